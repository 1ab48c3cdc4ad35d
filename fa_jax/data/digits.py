"""scikit-learn's bundled 8x8 digits (1797 images, no download), as a :class:`Task`."""

import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

from fa_jax.data.task import Task

LABELS = ("class", "parity")


def digits(label: str = "class", *, test_fraction: float = 0.25, split_seed: int = 0) -> Task:
    """8x8 digits flattened to 64 features, z-scored with training-split statistics.

    label: ``"class"`` (10 classes, integer labels) or ``"parity"`` (+1 even digit, -1 odd).
    The split is a fixed permutation from ``split_seed``; ``test_fraction`` of it is test.
    """
    if label not in LABELS:
        raise ValueError(f"unknown digits label {label!r}; known: {', '.join(LABELS)}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(split_seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(0), x[tr].std(0)
    std = np.where(std > 0, std, 1.0)
    x = ((x - mean) / std).astype(np.float32)
    if label == "parity":
        y, n_out, loss = np.where(y % 2 == 0, 1.0, -1.0).astype(np.float32), 1, "bce"
    else:
        y, n_out, loss = y.astype(np.int32), 10, "softmax_ce"
    return Task(x_test=jnp.asarray(x[te]), y_test=jnp.asarray(y[te]), x_train=jnp.asarray(x[tr]),
                y_train=jnp.asarray(y[tr]), name=f"digits-{label}", n_in=64, n_out=n_out, default_loss=loss)
