"""L-BFGS for full-batch problems: ``optax.lbfgs`` with its zoom line search, in one ``lax.scan``.

Quasi-Newton (the introductory deep-learning lectures): the update is ``-H_k g`` with ``H_k``
the limited-memory BFGS approximation of the inverse Hessian built from the last ``memory_size`` steps; the line
search (strong Wolfe, ``optax.scale_by_zoom_linesearch``) picks the step length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import jax
import optax

from fa_jax import checks
from fa_jax.errors import InputError

if TYPE_CHECKING:
    from fa_jax.data.task import Task
    from fa_jax.models.contract import Model

_P = TypeVar("_P")  # a params pytree


def lbfgs_minimize(loss_fn: Callable[[_P], jax.Array], params: _P, *, steps: int = 100,
                   memory_size: int = 10) -> tuple[_P, jax.Array]:
    """Minimize ``loss_fn(params) -> scalar`` from ``params``; returns ``(params, values (steps,))``.

    ``values[t]`` is the loss before step t. Deterministic full-batch objectives only (the
    line search re-evaluates ``loss_fn``).
    """
    for name, v in (("steps", steps), ("memory_size", memory_size)):
        checks.positive_int(f"lbfgs {name}", v)
    opt = optax.lbfgs(memory_size=memory_size)
    value_and_grad = optax.value_and_grad_from_state(loss_fn)

    def step(carry, _):
        p, s = carry
        value, g = value_and_grad(p, state=s)
        u, s = opt.update(g, s, p, value=value, grad=g, value_fn=loss_fn)
        return (optax.apply_updates(p, u), s), value

    run = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=steps))
    (params, _), values = run(params)
    return params, values


def lbfgs_fit(model: Model, params: _P, task: Task, *, loss: str | None = None, steps: int = 100,
              memory_size: int = 10) -> tuple[_P, jax.Array]:
    """Full-batch L-BFGS of an ``fj.mlp`` on ``task``'s training split with true (BP) gradients.

    FA/DFA updates are not gradients of any loss, so a line search on them is undefined:
    L-BFGS is offered for BP only.

    Args:
        model: an ``fj.mlp`` (``model.apply(params, x)``, BP).
        params: the starting params.
        task: a :class:`fa_jax.data.Task` with a fixed training set (``x_train``, ``y_train``).
        loss: a name of :mod:`fa_jax.losses` (default None: the task's ``default_loss``).
        steps, memory_size: as for :func:`lbfgs_minimize` (defaults 100 and 10).

    Returns:
        ``(params, values)``: the final params and the (steps,) training loss before each step.
    """
    from fa_jax import losses as losses_lib

    if task.x_train is None:
        raise InputError(f"task {task.name!r} has no fixed training set; L-BFGS needs a full batch")
    loss_fn = losses_lib.get(loss or task.default_loss)
    return lbfgs_minimize(lambda p: loss_fn(model.apply(p, task.x_train), task.y_train), params,
                          steps=steps, memory_size=memory_size)
