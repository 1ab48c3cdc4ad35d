"""Input scaling fitted on the training split only (the introductory deep-learning lectures):
min-max, z-score, ZCA whitening.

``scaler = fit_scaler(name, x_train)`` returns a :class:`Scaler` (a pytree of the fitted
statistics); ``scaler(x)`` applies it to any split, ``x`` of shape (n, d).

- minmax: ``(x - min) / (max - min + eps)``
- zscore: ``(x - mu) / (sigma + eps)``
- zca:    ``(x - mu) W``, ``W = U diag(1 / sqrt(lambda + eps)) U^T`` from the eigendecomposition
  ``C = U diag(lambda) U^T`` of the training covariance ``C = X^T X / (n - 1)`` (centred
  X); with ``eps -> 0`` the whitened training data has identity covariance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from fa_jax import checks, pytree
from fa_jax.data.task import Task
from fa_jax.errors import InputError
from fa_jax.registry import lookup


@pytree.dataclass
class Scaler:
    """``x -> (x - shift) @ matrix`` (ZCA) or ``(x - shift) / scale`` (elementwise). Shapes (d,), (d, d)."""

    shift: jnp.ndarray
    scale: jnp.ndarray | None = None
    matrix: jnp.ndarray | None = None
    name: str = pytree.field(pytree_node=False, default="identity")

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x - self.shift
        if self.matrix is not None:
            return x @ self.matrix
        return x / self.scale


def _identity(x, eps):
    d = x.shape[1]
    return Scaler(shift=jnp.zeros(d, x.dtype), scale=jnp.ones(d, x.dtype), name="identity")


def _minmax(x, eps):
    lo, hi = x.min(0), x.max(0)
    return Scaler(shift=lo, scale=hi - lo + eps, name="minmax")


def _zscore(x, eps):
    return Scaler(shift=x.mean(0), scale=x.std(0) + eps, name="zscore")


def _zca(x, eps):
    mu = x.mean(0)
    xc = x - mu
    cov = xc.T @ xc / (x.shape[0] - 1)
    lam, u = jnp.linalg.eigh(cov)
    lam = jnp.clip(lam, 0.0, None)
    return Scaler(shift=mu, matrix=(u / jnp.sqrt(lam + eps)) @ u.T, name="zca")


SCALERS = {"identity": _identity, "minmax": _minmax, "zscore": _zscore, "zca": _zca}


def fit_scaler(name: str, x_train: ArrayLike, eps: float = 1e-8) -> Scaler:
    """Fit scaler ``name`` on ``x_train`` (n, d), n >= 2; ``eps`` > 0 keeps the division finite."""
    make = lookup(SCALERS, name, "scaler")
    x_train = jnp.asarray(x_train)
    if x_train.ndim != 2 or x_train.shape[0] < 2:
        raise InputError(f"x_train must have shape (n >= 2, d), got {tuple(x_train.shape)}")
    checks.positive_number("eps", eps, finite=False)
    return make(x_train, eps)


def scale_task(task: Task, name: str, eps: float = 1e-8) -> Task:
    """The task with both splits scaled by a scaler fitted on its training split only."""
    if task.x_train is None:
        raise InputError(f"task {task.name!r} has no fixed training split to fit a scaler on")
    s = fit_scaler(name, task.x_train, eps)
    return task.replace(x_train=s(task.x_train), x_test=s(task.x_test), name=f"{task.name}+{name}")
