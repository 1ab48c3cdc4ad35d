"""Synthetic k-sparse parity and XOR.

k-sparse parity (Daniely & Malach 2020): x uniform on {-1, +1}^n; label
``y = prod_{i in S} x_i`` for a set S of k coordinates drawn once from ``data_seed``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from fa_jax.data.task import Task, sample_fixed


def parity_batch(key, subset, n: int, batch_size: int):
    """Fresh samples: x (batch, n) uniform in {-1, +1}, y (batch,) = prod of x[:, subset]."""
    x = jax.random.rademacher(key, (batch_size, n), dtype=jnp.float32)
    return x, jnp.prod(x[:, subset], axis=1)


def _sample_fresh(task, key, batch_size):
    return parity_batch(key, task.aux["subset"], task.n_in, batch_size)


def check_parity_sizes(n, k, n_train=None, n_test=2048) -> None:
    """One-line errors for impossible parity sizes."""
    for name, v in (("n", n), ("k", k), ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"parity {name} must be a positive int, got {v!r}")
    if k > n:
        raise ValueError(f"parity k={k} > n={n}: need 1 <= k <= n")
    if n_train is not None and (not isinstance(n_train, (int, np.integer)) or n_train < 1):
        raise ValueError(f"parity n_train must be a positive int or None (fresh samples), got {n_train!r}")


def parity(n: int = 30, k: int = 3, *, n_train: int | None = None, n_test: int = 2048, data_seed: int = 0) -> Task:
    """k-sparse parity on n bits. ``n_train=None``: fresh samples every step; else a fixed set.

    The relevant set S, the test set and any fixed training set come from ``data_seed``
    (independent of the training seeds, so every seed of a sweep faces the same task).
    """
    check_parity_sizes(n, k, n_train, n_test)
    k_sub, k_test, k_train = jax.random.split(jax.random.key(data_seed), 3)
    subset = jnp.sort(jax.random.permutation(k_sub, n)[:k])
    x_test, y_test = parity_batch(k_test, subset, n, n_test)
    task = Task(x_test=x_test, y_test=y_test, aux={"subset": subset}, name=f"parity(n={n},k={k})",
                n_in=n, n_out=1, default_loss="bce", sampler=_sample_fresh)
    if n_train is not None:
        x_tr, y_tr = parity_batch(k_train, subset, n, n_train)
        task = task.replace(x_train=x_tr, y_train=y_tr, sampler=sample_fixed)
    return task


def xor() -> Task:
    """The four XOR points, x in {0, 1}^2, y = +1 when exactly one input is 1, else -1.

    Train and test sets are the same four points; any batch size >= 4 is full-batch GD.
    """
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], jnp.float32)
    y = jnp.array([-1.0, 1.0, 1.0, -1.0], jnp.float32)
    return Task(x_test=x, y_test=y, x_train=x, y_train=y, name="xor", n_in=2, n_out=1, default_loss="bce")
