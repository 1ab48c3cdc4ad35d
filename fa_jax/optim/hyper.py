"""Optimizer hyperparameters checked by name, type and range before anything is built.

:func:`check` reads the names from the optax factory's signature (``inspect.signature``)
and each key's type from its default: a float default asks for a real number (an int is
one), a bool default for True or False, an int default for an int, a number-typed ``None``
default for a number or None; keys ending in ``_dtype`` ask for a floating dtype. Ranges are written
out below (:data:`RANGES`) for the zoo's optimizers; other keys get the type check only.
Every refusal is a one-line ``ValueError`` such as ``"adam: b1=1.5 must be in [0, 1)"``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fa_jax import checks
from fa_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class Range:
    """The interval a number must lie in; ``[lo, hi)`` by default."""

    lo: float
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = True

    def __contains__(self, v) -> bool:
        return (self.lo < v if self.lo_open else self.lo <= v) and (v < self.hi if self.hi_open else v <= self.hi)

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


BETA = Range(0, 1)                        # a decay rate of a moving average: 1 would never forget
UNIT = Range(0, 1, hi_open=False)         # a rate that may be 1 (adadelta's rho, rmsprop's decay)
POSITIVE = Range(0, lo_open=True)         # a finite number > 0 (eps: it divides)
NONNEG = Range(0)                         # a finite number >= 0

_ADAM = {"b1": BETA, "b2": BETA, "eps": POSITIVE, "eps_root": NONNEG}
_SGD = {"momentum": BETA}
RANGES = {
    "sgd": _SGD, "momentum": _SGD, "nesterov": _SGD,
    "adagrad": {"initial_accumulator_value": NONNEG, "eps": POSITIVE},
    "adadelta": {"rho": UNIT, "eps": POSITIVE, "weight_decay": NONNEG},
    "rmsprop": {"decay": UNIT, "eps": POSITIVE, "initial_scale": NONNEG, "momentum": BETA},
    "adam": _ADAM, "adamw": {**_ADAM, "weight_decay": NONNEG}, "nadam": _ADAM, "amsgrad": _ADAM,
    "adamax": {"b1": BETA, "b2": BETA, "eps": POSITIVE},
}


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one keyword accepts: ``kind`` is "number", "int", "bool", "dtype" or "any"."""

    kind: str
    range: Range | None = None
    none: bool = False      # None accepted too
    schedule: bool = False  # a callable step -> value accepted too (numbers only)

    def wants(self) -> str:
        what = {"number": "a number", "int": "an int", "bool": "True or False",
                "dtype": "a floating dtype name (e.g. 'float32')"}[self.kind]
        what += f" in {self.range}" if self.range is not None else ""
        return what + " or None" * self.none + " or a schedule" * self.schedule


def _type_args(annotation) -> set:
    """Every type named anywhere in ``annotation`` (through Union, Optional, Callable, ...)."""
    seen, todo = set(), [annotation]
    while todo:
        a = todo.pop()
        seen.add(typing.get_origin(a) or a)
        todo.extend(a for a in typing.get_args(a) if not isinstance(a, list))
    return seen


def spec(param: inspect.Parameter, range_: Range | None = None) -> Spec:
    """The :class:`Spec` of one factory keyword, from its default and annotation."""
    d, named = param.default, _type_args(param.annotation)
    schedule = any(t in named for t in (Callable, typing.Callable))
    if param.name.endswith("_dtype"):
        return Spec("dtype", none=d is None)
    if isinstance(d, bool):
        return Spec("bool")
    if isinstance(d, int):
        return Spec("int", range_)
    if isinstance(d, float) or (d is None and float in named and typing.Any not in named):
        return Spec("number", range_, none=d is None, schedule=schedule)
    return Spec("any")


def specs(name: str, make: Callable[..., Any]) -> tuple[dict, bool]:
    """``({keyword: Spec}, takes **kwargs)`` of the factory ``make`` registered as ``name``."""
    try:
        params = inspect.signature(make).parameters
    except (TypeError, ValueError):  # no signature to read: optax will judge
        return {}, True
    ranges = RANGES.get(name, {})
    table = {k: spec(p, ranges.get(k)) for k, p in params.items()
             if k != "learning_rate" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return table, any(p.kind == p.VAR_KEYWORD for p in params.values())


def plain(v: Any) -> Any:
    """``v`` as a Python scalar if it is a concrete 0-d value (numpy scalars, 0-d arrays); else ``v``."""
    if isinstance(v, (np.generic, np.ndarray, jax.Array)) and not isinstance(v, jax.core.Tracer) and np.ndim(v) == 0:
        return v.item()
    return v


def _value(name: str, key: str, s: Spec, v):
    """``v`` checked against ``s`` and made plain (Python scalars, dtype names); else a ValueError."""
    def fail(what):
        raise InputError(f"{name}: {key}={checks.show(v)} must be {what}")

    if s.kind == "any" or (v is None and s.none) or (s.schedule and callable(v)):
        return v
    if s.kind == "dtype":
        try:
            dt = np.dtype(v) if v is not None and not (isinstance(v, str) and not v) else fail(s.wants())
        except TypeError:
            fail(s.wants())
        return dt.name if jnp.issubdtype(dt, jnp.floating) else fail(s.wants())
    if isinstance(v, jax.core.Tracer) and s.kind in ("number", "int") and np.ndim(v) == 0:
        return v  # a traced value (inside jit/vmap): its range cannot be known here
    u = plain(v)
    if s.kind == "bool":
        return u if isinstance(u, bool) else fail(s.wants())
    if s.kind == "int" and not checks.is_int(u) or s.kind == "number" and not checks.is_number(u):
        fail(s.wants())
    if s.range is not None and u not in s.range:  # nan is in no range, inf in none of those written out
        fail(f"in {s.range}")
    return float(u) if s.kind == "number" else int(u)


def check(name: str, make: Callable[..., Any], hyper: dict, extra: Sequence[str] = ()) -> dict:
    """``hyper`` checked for the factory ``make`` registered as ``name`` and made plain.

    Args:
        name: the optimizer's name in the zoo (its ranges in :data:`RANGES`).
        make: its optax factory ``make(learning_rate, **hyper)``.
        hyper: the keywords for ``make``.
        extra: other accepted keys, listed in the unknown-key message (the regularization keys).

    Returns:
        ``hyper`` with numpy scalars as Python scalars and dtypes as their names.
    """
    table, open_ = specs(name, make)
    out = {}
    for key, v in hyper.items():
        if key not in table:
            if open_:
                out[key] = v
                continue
            more = f" (or a regularization key: {', '.join(extra)})" if extra else ""
            raise InputError(f"{name}: unknown hyperparameter {key!r}; known: {', '.join(sorted(table))}{more}")
        out[key] = _value(name, key, table[key], v)
    return out
