"""Synthetic k-sparse parity and XOR.

k-sparse parity (Daniely & Malach 2020): x uniform on {-1, +1}^n; label
``y = prod_{i in S} x_i`` for a set S of k coordinates drawn once from ``data_seed``.

``distribution="mixture"``: Daniely & Malach's distribution D_A ("Learning Parities with
Neural Networks", NeurIPS 2020, section 3): each example is, with probability 1/2, uniform
on {-1, +1}^n and, with probability 1/2, uniform except that its k relevant coordinates all
equal one sign s drawn uniformly from {-1, +1} (so y = s^k). Labels are the same parity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.data.task import Task, sample_fixed
from fa_jax.errors import InputError
from fa_jax.training import memory


def parity_batch(key: jax.Array, subset: jax.Array, n: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """Fresh samples: x (batch, n) uniform in {-1, +1}, y (batch,) = prod of x[:, subset]."""
    x = jax.random.rademacher(key, (batch_size, n), dtype=jnp.float32)
    return x, jnp.prod(x[:, subset], axis=1)


def mixture_batch(key: jax.Array, subset: jax.Array, n: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """Fresh samples from Daniely & Malach's mixture (module doc): x (batch, n), y (batch,)."""
    k_x, k_mix, k_sign = jax.random.split(key, 3)
    x = jax.random.rademacher(k_x, (batch_size, n), dtype=jnp.float32)
    aligned = jax.random.bernoulli(k_mix, 0.5, (batch_size, 1))
    sign = jax.random.rademacher(k_sign, (batch_size, 1), dtype=jnp.float32)
    relevant = jnp.zeros((n,), bool).at[subset].set(True)
    x = jnp.where(aligned & relevant, sign, x)
    return x, jnp.prod(x[:, subset], axis=1)


DISTRIBUTIONS = {"uniform": parity_batch, "mixture": mixture_batch}


def _sample_fresh(task, key, batch_size):
    return parity_batch(key, task.aux["subset"], task.n_in, batch_size)


def _sample_fresh_mixture(task, key, batch_size):
    return mixture_batch(key, task.aux["subset"], task.n_in, batch_size)


def check_parity_sizes(n: int, k: int, n_train: int | None = None, n_test: int = 2048) -> None:
    """One-line errors for impossible parity sizes."""
    for name, v in (("n", n), ("k", k), ("n_test", n_test)):
        checks.positive_int(f"parity {name}", v, numpy=True)
    if k > n:
        raise InputError(f"parity k={k} > n={n}: need 1 <= k <= n")
    checks.positive_int("parity n_train", n_train, none=True, numpy=True,
                        what="a positive int or None (fresh samples)")
    m = n_test + (n_train or 0)
    memory.check_bytes(4 * n * (m + 1), f"the parity data (n={n}, {m} examples)")


def parity(n: int = 30, k: int = 3, *, n_train: int | None = None, n_test: int = 2048, data_seed: int = 0,
           distribution: str = "uniform") -> Task:
    """k-sparse parity on n bits. ``n_train=None``: fresh samples every step; else a fixed set.

    The relevant set S, the test set and any fixed training set come from ``data_seed``
    (independent of the training seeds, so every seed of a sweep faces the same task).

    Args:
        n: input bits, x in {-1, +1}^n (default 30).
        k: the size of the relevant set S, 1 <= k <= n (default 3).
        n_train: a fixed training set of this many examples, or None (default): fresh samples every step.
        n_test: test examples (default 2048).
        data_seed: draws S, the test set and the training set (default 0).
        distribution: ``"uniform"`` (default) or ``"mixture"`` (Daniely & Malach's D_A, module
            doc); train and test sets follow it.

    Returns:
        A :class:`Task` with ``n_in = n``, ``n_out = 1``, labels in {-1, +1}, default loss bce.
    """
    check_parity_sizes(n, k, n_train, n_test)
    checks.choice("parity distribution", distribution, DISTRIBUTIONS)
    batch = DISTRIBUTIONS[distribution]
    k_sub, k_test, k_train = jax.random.split(jax.random.key(data_seed), 3)
    subset = jnp.sort(jax.random.permutation(k_sub, n)[:k])
    x_test, y_test = batch(k_test, subset, n, n_test)
    suffix = "" if distribution == "uniform" else f",{distribution}"
    task = Task(x_test=x_test, y_test=y_test, aux={"subset": subset}, name=f"parity(n={n},k={k}{suffix})",
                n_in=n, n_out=1, default_loss="bce",
                sampler=_sample_fresh if distribution == "uniform" else _sample_fresh_mixture)
    if n_train is not None:
        x_tr, y_tr = batch(k_train, subset, n, n_train)
        task = task.replace(x_train=x_tr, y_train=y_tr, sampler=sample_fixed)
    return task


def xor() -> Task:
    """The four XOR points, x in {0, 1}^2, y = +1 when exactly one input is 1, else -1.

    Train and test sets are the same four points; any batch size >= 4 is full-batch GD.
    """
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], jnp.float32)
    y = jnp.array([-1.0, 1.0, 1.0, -1.0], jnp.float32)
    return Task(x_test=x, y_test=y, x_train=x, y_train=y, name="xor", n_in=2, n_out=1, default_loss="bce")
