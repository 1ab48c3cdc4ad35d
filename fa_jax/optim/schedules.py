"""Learning-rate schedules by name, each optax's own: ``schedule(name, lr, steps, **hyper)``.

A schedule is ``step -> learning rate`` and goes wherever a learning rate does
(``fj.optimizer(name, schedule)``, ``fj.sweep(lr=schedule)``). ``steps`` is the run's length.

- constant       lr                                              (``optax.constant_schedule``)
- step           lr * factor^(floor(t / every))                  (``optax.exponential_decay``, staircase)
- exponential    lr * decay_rate^(t / steps)                     (``optax.exponential_decay``)
- warmup_cosine  linear 0 -> lr over ``warmup`` steps, cosine to 0 (``optax.warmup_cosine_decay_schedule``)
- sgdr           cosine restarts every ``steps / cycles`` steps (``optax.sgdr_schedule``, Loshchilov & Hutter 2017)
- one_cycle      1cycle: up to lr, then down (``optax.cosine_onecycle_schedule``, Smith 2018)

Reduce-on-plateau depends on the loss, not on the step: :func:`reduce_on_plateau` is the
optax link (``optax.contrib.reduce_on_plateau``) that scales updates; chain it after the
optimizer and pass ``value=loss`` to its ``update``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from os import PathLike

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fa_jax import checks, registry
from fa_jax.errors import InputError
from fa_jax.optim.zoo import check_learning_rate
from fa_jax.registry import lookup


def _fraction(name, v, closed_hi=False):
    checks.number_in(name, v, 0.0, 1.0, lo_open=True, hi_open=not closed_hi)


def _constant(lr, steps):
    return optax.constant_schedule(lr)


def _step(lr, steps, every=None, factor=0.1):
    every = every or max(1, steps // 3)
    _fraction("step factor", factor, closed_hi=True)
    return optax.exponential_decay(lr, transition_steps=int(every), decay_rate=factor, staircase=True)


def _exponential(lr, steps, decay_rate=0.01):
    _fraction("exponential decay_rate", decay_rate, closed_hi=True)
    return optax.exponential_decay(lr, transition_steps=steps, decay_rate=decay_rate)


def _warmup_cosine(lr, steps, warmup=None, end_value=0.0):
    warmup = max(1, steps // 10) if warmup is None else int(warmup)
    if not 0 <= warmup < steps:
        raise InputError(f"warmup must be in [0, steps={steps}), got {warmup!r}")
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, end_value)


def _sgdr(lr, steps, cycles=4, warmup=0):
    checks.integer("sgdr cycles", cycles, 1, steps, hi_text=f"steps={steps}")
    period = steps // cycles
    return optax.sgdr_schedule([{"init_value": 0.0 if warmup else lr, "peak_value": lr, "warmup_steps": warmup,
                                 "decay_steps": period, "end_value": 0.0}] * cycles)


def _one_cycle(lr, steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    _fraction("one_cycle pct_start", pct_start)
    return optax.cosine_onecycle_schedule(steps, lr, pct_start, div_factor, final_div_factor)


SCHEDULES = {"constant": _constant, "step": _step, "exponential": _exponential,
             "warmup_cosine": _warmup_cosine, "sgdr": _sgdr, "one_cycle": _one_cycle}


def register(name: str, make: Callable[..., optax.Schedule], *,
             replace: bool = False) -> Callable[..., optax.Schedule]:
    """Add ``make(lr, steps, **hyper) -> optax schedule`` to :data:`SCHEDULES` as ``name``; a name
    already registered is refused unless ``replace=True``. Returns ``make``."""
    return registry.add(SCHEDULES, name, make, what="schedule", replace=replace)


def schedule(name: str, lr: float, steps: int, **hyper) -> optax.Schedule:
    """Schedule ``name`` peaking at (or starting from) ``lr`` over a run of ``steps`` steps.

    hyper: step (``every``, ``factor``), exponential (``decay_rate``: lr fraction left at the
    end), warmup_cosine (``warmup``, ``end_value``), sgdr (``cycles``, ``warmup``),
    one_cycle (``pct_start``, ``div_factor``, ``final_div_factor``).
    """
    make = lookup(SCHEDULES, name, "schedule")
    check_learning_rate(lr)
    checks.positive_int("schedule steps", steps)
    try:
        return make(float(lr), steps, **hyper)
    except TypeError as err:
        raise InputError(f"schedule {name!r}: bad hyperparameter ({err})") from None


def reduce_on_plateau(factor: float = 0.1, patience: int = 10, rtol: float = 1e-4, cooldown: int = 0,
                      min_scale: float = 0.0, accumulation_size: int = 1) -> optax.GradientTransformation:
    """``optax.contrib.reduce_on_plateau``: multiply updates by ``factor`` after ``patience``
    updates without a relative improvement ``rtol`` of the loss passed as ``value=``.

    Args:
        factor: in (0, 1), the scale's multiplier at each reduction (default 0.1).
        patience: updates without improvement before a reduction, a positive int (default 10).
        rtol: the relative improvement of the loss that counts as one (default 1e-4).
        cooldown: updates to wait after a reduction before counting again (default 0).
        min_scale: the scale never drops below this (default 0).
        accumulation_size: updates whose mean loss counts as one (default 1: every update).

    The one reduce-on-plateau path: ``optimizer_hyper={"plateau_patience": ...}`` of
    :func:`fa_jax.optim.regularize.regularized` chains this link too.
    """
    _fraction("reduce_on_plateau factor", factor)
    checks.positive_int("reduce_on_plateau patience", patience)
    checks.positive_int("reduce_on_plateau accumulation_size", accumulation_size)
    return optax.contrib.reduce_on_plateau(factor=factor, patience=patience, rtol=rtol, cooldown=cooldown,
                                           accumulation_size=accumulation_size, min_scale=min_scale)


def plot_schedule(schedules: Mapping[str, optax.Schedule], steps: int, path: str | PathLike[str],
                  title: str = "learning-rate schedules") -> str | PathLike[str]:
    """Plot ``{label: schedule}`` over ``steps`` steps into ``path`` (PNG); returns ``path``."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    t = np.arange(steps)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    for label, s in schedules.items():
        ax.plot(t, np.asarray(jax.vmap(s)(jnp.asarray(t))), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(schedules) > 3 else 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


