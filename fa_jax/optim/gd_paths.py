"""Gradient-descent variants on 1-D linear regression, traced in (w, b) (the introductory deep-learning lectures).

Data ``y = 3 x + 2 + U(-0.1, 0.1)``; model ``y_hat = w x + b``; loss ``J = mean (y_hat - y)^2``.
Every variant is an ``fj.optimizer`` run for ``steps`` steps in one ``lax.scan``; each step
draws a mini-batch of ``batch_size`` samples without replacement (the whole set for
full-batch GD).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fa_jax import checks
from fa_jax.optim import zoo as optim


def linear_data(key: jax.Array, n: int = 30, w: float = 3.0, b: float = 2.0, noise: float = 0.1,
                x_range: tuple[float, float] = (-1.0, 1.0)) -> tuple[jax.Array, jax.Array]:
    """x (n,) uniform in ``x_range``; y (n,) = w x + b + U(-noise, noise).

    Args:
        key: the PRNG key of x and the noise.
        n: samples (default 30).
        w, b: the true slope and intercept (default 3 and 2, the lectures' line).
        noise: half-width of the uniform noise (default 0.1).
        x_range: (lo, hi) of the uniform x (default (-1, 1)).
    """
    kx, kn = jax.random.split(key)
    x = jax.random.uniform(kx, (n,), minval=x_range[0], maxval=x_range[1])
    return x, w * x + b + jax.random.uniform(kn, (n,), minval=-noise, maxval=noise)


def mse_wb(wb: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """J(w, b) = mean (w x + b - y)^2; ``wb`` (..., 2) broadcasts (for contour grids)."""
    pred = wb[..., 0:1] * x + wb[..., 1:2]
    return jnp.mean((pred - y) ** 2, axis=-1)


def gd_path(x: jax.Array, y: jax.Array, key: jax.Array, *, optimizer: str = "sgd", lr: float = 0.1,
            batch_size: int | None = None, steps: int = 100, start: tuple[float, float] = (0.0, 0.0),
            **hyper) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory of one variant: ``(path (steps + 1, 2) of (w, b), loss (steps + 1,) on all data)``.

    Args:
        x, y: (n,) data, e.g. from :func:`linear_data`.
        key: draws the mini-batches (one permutation per step).
        optimizer: a name of :func:`fa_jax.optimizer` (default ``"sgd"``); ``**hyper`` its options
            (e.g. ``momentum=0.9``).
        lr: the learning rate (default 0.1).
        batch_size: samples per step, drawn without replacement, 1..n (default None: all n, full-batch GD).
        steps: optimizer steps (default 100).
        start: the initial (w, b) (default (0, 0)), row 0 of the path.

    Returns:
        numpy arrays ``(path, loss)``: (steps + 1, 2) of (w, b), and J on all data at each of them.
    """
    n = x.shape[0]
    bs = n if batch_size is None else batch_size
    checks.integer("batch_size", bs, 1, n)
    tx = optim.optimizer(optimizer, lr, **hyper)

    def step(carry, k):
        wb, s = carry
        idx = jax.random.permutation(k, n)[:bs]
        g = jax.grad(mse_wb)(wb, x[idx], y[idx])
        u, s = tx.update(g, s, wb)
        wb = wb + u
        return (wb, s), wb

    wb0 = jnp.asarray(start, jnp.float32)
    run = jax.jit(lambda wb, ks: jax.lax.scan(step, (wb, tx.init(wb)), ks))
    _, path = run(wb0, jax.random.split(key, steps))
    path = jnp.concatenate([wb0[None], path])
    return np.asarray(path), np.asarray(mse_wb(path, x, y))
