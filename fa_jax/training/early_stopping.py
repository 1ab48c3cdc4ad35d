"""Early stopping on a validation split, keeping each seed's best parameters (the introductory deep-learning lectures).

``fj.sweep(..., val=(x_val, y_val), early_stopping=patience)`` evaluates the validation loss
inside the scan at every evaluation (every ``eval_every`` steps) and carries, per seed, in
``TrainState.early``: the parameters at the lowest validation loss so far, that loss, its
step, the evaluations since it improved, and ``stopped_at``, the step at which ``patience``
evaluations in a row brought no improvement (-1 while never).

A vmapped program cannot end one seed early, so the sweep still runs every step; but once a
seed has stopped its best parameters are frozen, so they are exactly the parameters an
early-stopped run of that seed returns (tested against a run stopped at its ``best_step``).
``split_validation`` carves the validation split off a task's training set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from fa_jax import checks
from fa_jax import losses as losses_lib
from fa_jax.errors import InputError
from fa_jax.rules import core as rules_lib
from fa_jax.training.state import freeze_diverged

if TYPE_CHECKING:
    from fa_jax.data.task import Task
    from fa_jax.losses import Loss
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule
    from fa_jax.training.state import TrainState


def check_patience(patience: int | None) -> None:
    """One-line ValueError unless ``patience`` is None (off) or a positive int (evaluations)."""
    if patience is None:
        return
    checks.positive_int("early_stopping", patience, numpy=True,
                        what="None or a positive int (evaluations of patience)")


def check_val(task: Task, val: tuple[ArrayLike, ArrayLike]) -> tuple[jax.Array, jax.Array]:
    """``val`` as device arrays ``(x_val (n, n_in), y_val (n,))`` checked against ``task``."""
    if not (isinstance(val, (tuple, list)) and len(val) == 2):
        raise InputError(f"val must be a pair (x_val, y_val), got {type(val).__name__}")
    x, y = jnp.asarray(val[0]), jnp.asarray(val[1])
    if x.ndim != 2 or x.shape[1] != task.n_in or y.shape[:1] != x.shape[:1] or x.shape[0] < 1:
        raise InputError(f"val must be x_val (n >= 1, {task.n_in}) and y_val (n,), got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    return x.astype(task.x_test.dtype), y.astype(task.y_test.dtype)


def split_validation(task: Task, n_val: int, key: jax.Array) -> tuple[Task, tuple[jax.Array, jax.Array]]:
    """``(task without them, (x_val, y_val))``: ``n_val`` training examples drawn by ``key``."""
    n = task.n_train
    if n is None:
        raise InputError(f"task {task.name!r} has no fixed training set to split a validation set from")
    checks.integer("n_val", n_val, 1, n, hi_open=True, numpy=True)
    perm = jax.random.permutation(key, n)
    va, tr = perm[:n_val], perm[n_val:]
    return (task.replace(x_train=task.x_train[tr], y_train=task.y_train[tr]),
            (task.x_train[va], task.y_train[va]))


def init_early(params: Any) -> dict[str, Any]:
    """Fresh tracking state: best params (a copy of ``params``), val_loss inf, step/stopped_at -1."""
    return {"params": params, "val_loss": jnp.full((), jnp.inf, jnp.float32), "step": jnp.full((), -1, jnp.int32),
            "stale": jnp.zeros((), jnp.int32), "stopped_at": jnp.full((), -1, jnp.int32)}


def update_early(early: dict[str, Any], params: Any, step: jax.Array, val_loss: jax.Array,
                 patience: int) -> dict[str, Any]:
    """One evaluation: keep ``params`` if ``val_loss`` is a new minimum (NaN never is) and the
    seed has not stopped; stop after ``patience`` evaluations in a row without one.

    Args:
        early: the tracking state (:func:`init_early`): best ``params``, ``val_loss``, ``step``,
            ``stale`` (evaluations since the best), ``stopped_at`` (-1 while running).
        params: the seed's current params.
        step: the current training step (int32 scalar).
        val_loss: the current validation loss (scalar).
        patience: evaluations in a row without a new minimum before the seed stops.

    Returns:
        The updated tracking state, same structure as ``early``.
    """
    active = early["stopped_at"] < 0
    better = active & (val_loss < early["val_loss"])
    stale = jnp.where(better, 0, early["stale"] + active.astype(jnp.int32))
    stop = active & ~better & (stale >= patience)
    return {"params": jax.tree.map(lambda new, old: jnp.where(better, new, old), params, early["params"]),
            "val_loss": jnp.where(better, val_loss.astype(jnp.float32), early["val_loss"]),
            "step": jnp.where(better, step, early["step"]), "stale": stale,
            "stopped_at": jnp.where(stop, step, early["stopped_at"])}


def make_validate(model: Model, rule: str | Rule, loss_fn: Loss,
                  patience: int) -> Callable[[TrainState, Task], tuple[TrainState, dict[str, jax.Array]]]:
    """``validate(state, task) -> (state, {"val_loss", "val_acc"})`` on ``task.aux["x_val"/"y_val"]``.

    A diverged seed's tracking state stays as it was (its best params, ``stale``, ``stopped_at``)."""

    r = rules_lib.get(rule)

    def validate(state: TrainState, task: Task) -> tuple[TrainState, dict[str, jax.Array]]:
        x, y = task.aux["x_val"], task.aux["y_val"]
        logits = r.infer(model, state.params, x, state.feedback, state.model_state)
        val_loss, val_acc = loss_fn(logits, y), losses_lib.accuracy(logits, y).mean()
        early = update_early(state.early, state.params, state.step, val_loss, patience)
        return freeze_diverged(state.replace(early=early), state), {"val_loss": val_loss, "val_acc": val_acc}

    return validate
