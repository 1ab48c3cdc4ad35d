"""scikit-learn's bundled 8x8 digits (1797 images, no download): the one loader and split, and a :class:`Task`.

:func:`split` is the raw fixed split every digits task uses (flat features here, 8x8 images
in :func:`fa_jax.data.images`, digit pairs in :mod:`fa_jax.data.image_parity`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from fa_jax import checks
from fa_jax.data.task import Task

LABELS = ("class", "parity")


def split(split_seed: int = 0, test_fraction: float = 0.25
          ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))``: the 1797 digits as (N, 64) floats in 0..16 and
    int labels, split by a fixed permutation from ``split_seed`` (the first ``test_fraction`` is test)."""
    from sklearn.datasets import load_digits  # noqa: PLC0415  (loaded on first use)

    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(split_seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    return (x[tr], y[tr]), (x[te], y[te])


def digits(label: str = "class", *, test_fraction: float = 0.25, split_seed: int = 0) -> Task:
    """8x8 digits flattened to 64 features, z-scored with training-split statistics.

    label: ``"class"`` (10 classes, integer labels) or ``"parity"`` (+1 even digit, -1 odd).
    The split is a fixed permutation from ``split_seed``; ``test_fraction`` of it is test.
    """
    checks.choice("digits label", label, LABELS)
    checks.number_in("test_fraction", test_fraction, 0, 1, lo_open=True)
    (x_tr, y_tr), (x_te, y_te) = split(split_seed, test_fraction)
    mean, std = x_tr.mean(0), x_tr.std(0)
    std = np.where(std > 0, std, 1.0)
    x_tr, x_te = ((x_tr - mean) / std).astype(np.float32), ((x_te - mean) / std).astype(np.float32)
    if label == "parity":
        y_tr, y_te = (np.where(y % 2 == 0, 1.0, -1.0).astype(np.float32) for y in (y_tr, y_te))
        n_out, loss = 1, "bce"
    else:
        y_tr, y_te, n_out, loss = y_tr.astype(np.int32), y_te.astype(np.int32), 10, "softmax_ce"
    return Task(x_test=jnp.asarray(x_te), y_test=jnp.asarray(y_te), x_train=jnp.asarray(x_tr),
                y_train=jnp.asarray(y_tr), name=f"digits-{label}", n_in=64, n_out=n_out, default_loss=loss)
