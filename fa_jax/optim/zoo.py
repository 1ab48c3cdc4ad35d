"""The optimizer zoo: ``optimizer(name, learning_rate, **hyper) -> optax.GradientTransformation``.

Every optimizer is optax's own, wrapped in ``optax.inject_hyperparams`` so its
hyperparameters (the learning rate above all) live in the optimizer state and can differ
per vmapped seed: see :func:`set_learning_rate`. ``learning_rate`` may be a float or an
optax schedule ``step -> lr``. Defaults are optax's unless stated.

- sgd       theta -= lr g                                   (``optax.sgd``)
- momentum  v = mu v + g; theta -= lr v, mu = 0.9           (``optax.sgd(momentum=)``)
- nesterov  Nesterov's look-ahead form of the above         (``optax.sgd(nesterov=True)``)
- adagrad   G += g^2; theta -= lr g / sqrt(G + eps)         (``optax.adagrad``)
- adadelta  Zeiler 2012 scaled by lr, exactly PyTorch's     (``optax.adadelta``)
- rmsprop   E[g^2] = rho E + (1 - rho) g^2, rho = 0.9       (``optax.rmsprop``)
- adam, adamw, nadam, adamax, amsgrad                      (optax's namesakes)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import optax
from jax.typing import ArrayLike

from fa_jax import checks, registry
from fa_jax.errors import InputError
from fa_jax.optim import regularize
from fa_jax.optim.hyper import check as check_hyper
from fa_jax.optim.hyper import plain
from fa_jax.registry import lookup

_DEFAULTS = {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "nesterov": True}}

OPTIMIZERS = {
    "sgd": optax.sgd,
    "momentum": optax.sgd,
    "nesterov": optax.sgd,
    "adagrad": optax.adagrad,
    "adadelta": optax.adadelta,
    "rmsprop": optax.rmsprop,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "nadam": optax.nadam,
    "adamax": optax.adamax,
    "amsgrad": optax.amsgrad,
}


def register(name: str, make: Callable[..., optax.GradientTransformation], *,
             replace: bool = False) -> Callable[..., optax.GradientTransformation]:
    """Add an optax constructor ``make(learning_rate, **hyper) -> GradientTransformation`` to
    :data:`OPTIMIZERS` as ``name``; a name already registered is refused unless ``replace=True``.
    Returns ``make``."""
    return registry.add(OPTIMIZERS, name, make, what="optimizer", replace=replace)


def check_learning_rate(learning_rate: optax.ScalarOrSchedule) -> None:
    """Refuse non-positive or non-finite constant learning rates (schedules pass through)."""
    if callable(learning_rate):
        return
    if isinstance(learning_rate, (bool, np.bool_)):
        raise InputError(f"learning rate must be a positive number or an optax schedule, got {learning_rate!r}")
    try:
        lr = float(learning_rate)
    except (TypeError, ValueError):
        raise InputError(f"learning rate must be a positive number or an optax schedule, got {learning_rate!r}") from None
    if not (lr > 0 and lr < float("inf")):
        raise InputError(f"learning rate must be positive and finite, got {learning_rate!r}")


def _split(name: str, make, hyper: dict) -> tuple[dict, dict]:
    """``(optax keywords, regularization keys)`` of ``hyper``, both checked (keys, types, ranges)."""
    kwargs = {**_DEFAULTS.get(name, {}), **hyper}
    tools = {k: kwargs.pop(k) for k in regularize.TOOLS if k in kwargs}
    regularize.check_tools(**tools)
    return check_hyper(name, make, kwargs, extra=regularize.TOOLS), tools


def check_sweep_options(name: str, hyper: Mapping[str, object] | None) -> dict:
    """``fj.sweep(optimizer=name, optimizer_hyper=hyper)`` checked as :func:`optimizer` checks it.

    ``hyper`` must be None or a dict with str keys (not ``learning_rate``: the sweep's ``lr``)
    and hashable values (the sweep caches its compiled programs by them). Returns it as a
    dict, numpy scalars and 0-d arrays made Python scalars; a one-line ValueError otherwise.
    """
    make = lookup(OPTIMIZERS, name, "optimizer")
    if hyper is None:
        return {}
    if not isinstance(hyper, Mapping):
        raise InputError(f"optimizer_hyper must be a dict {{name: value}} or None, got {checks.show(hyper)}")
    for k in hyper:
        if not isinstance(k, str):
            raise InputError(f"optimizer_hyper keys must be str, got {k!r}")
    if "learning_rate" in hyper:
        raise InputError("optimizer_hyper must not hold learning_rate: pass lr= to fj.sweep")
    out = {k: plain(v) for k, v in hyper.items()}
    _split(name, make, out)
    for k, v in out.items():
        try:
            hash(v)
        except TypeError:
            raise InputError(f"optimizer_hyper[{k!r}]={checks.show(v)} must be hashable (fj.sweep caches its "
                             f"compiled programs by these options): a number, bool, str or function") from None
    return out


def optimizer(name: str, learning_rate: optax.ScalarOrSchedule = 1e-3, **hyper) -> optax.GradientTransformation:
    """Optimizer ``name`` from the zoo, hyperparameters injected into its state.

    ``hyper`` goes to the optax constructor (e.g. ``b1=0.8`` for adam, ``momentum=0.5``), each
    key checked by name, type and range first (:mod:`fa_jax.optim.hyper`);
    the regularization keys of :mod:`fa_jax.optim.regularize` (``clip_value``, ``clip_norm``, ``l1``,
    ``l2``, ``penalize_biases``, ``decoupled_decay``, ``max_norm``) chain its links around it.
    """
    make = lookup(OPTIMIZERS, name, "optimizer")
    check_learning_rate(learning_rate)
    kwargs, tools = _split(name, make, hyper)
    if tools:
        make = regularize.regularized(make, **tools)
    try:
        return optax.inject_hyperparams(make)(learning_rate=learning_rate, **kwargs)
    except TypeError as err:
        raise InputError(f"optimizer {name!r}: bad hyperparameter ({err})") from None


def set_learning_rate(opt_state: optax.InjectHyperparamsState,
                      learning_rate: ArrayLike) -> optax.InjectHyperparamsState:
    """Return ``opt_state`` with its injected learning rate replaced (jit/vmap-friendly)."""
    hp = dict(opt_state.hyperparams)
    hp["learning_rate"] = learning_rate
    return opt_state._replace(hyperparams=hp)
