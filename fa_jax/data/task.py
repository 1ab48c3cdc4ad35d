"""A training task as one pytree: resident arrays plus a pure, jittable batch sampler.

Labels follow ``fa_jax.losses``: binary tasks have ``n_out == 1`` and labels in {-1, +1};
multi-class tasks have integer labels in [0, n_out).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import pytree


def sample_fixed(task: Task, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """Mini-batch drawn with replacement from the resident training set.

    A ``batch_size`` of at least the training-set size returns the whole set (full-batch GD).
    """
    n = task.x_train.shape[0]
    if batch_size >= n:
        return task.x_train, task.y_train
    idx = jax.random.randint(key, (batch_size,), 0, n)
    return task.x_train[idx], task.y_train[idx]


@pytree.dataclass
class Task:
    """Arrays live on the device and are passed to jitted code as arguments (never constants).

    x_test: (n_test, n_in), y_test: (n_test,). ``x_train``/``y_train`` hold a fixed training
    set or are ``None`` when ``sampler`` generates fresh samples; ``aux`` holds any other
    arrays the sampler needs (e.g. the parity's relevant coordinates). Image tasks set
    ``input_shape`` ``(H, W, C)`` (inputs are then (n, H, W, C) and ``n_in = H W C``).
    """

    x_test: jax.Array
    y_test: jax.Array
    x_train: jax.Array | None = None
    y_train: jax.Array | None = None
    aux: dict = pytree.field(default_factory=dict)
    name: str = pytree.field(pytree_node=False, default="task")
    n_in: int = pytree.field(pytree_node=False, default=0)
    n_out: int = pytree.field(pytree_node=False, default=1)
    default_loss: str = pytree.field(pytree_node=False, default="bce")
    sampler: Callable = pytree.field(pytree_node=False, default=sample_fixed)
    input_shape: tuple | None = pytree.field(pytree_node=False, default=None)

    def sample(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
        """One training batch ``(x (batch, n_in), y (batch,))``, a pure function of ``key``."""
        return self.sampler(self, key, batch_size)

    @property
    def n_train(self) -> int | None:
        """Size of the fixed training set, or None for generated (fresh) samples."""
        return None if self.x_train is None else int(self.x_train.shape[0])


def labels_dtype(n_out: int) -> DTypeLike:
    return jnp.float32 if n_out == 1 else jnp.int32
