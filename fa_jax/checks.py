"""Argument checks shared by the library: each raises a one-line ``ValueError`` naming the bad value.

Every message reads ``"{name} must be {what}, got {value!r}"`` (:func:`choice`:
``"unknown {kind} {value!r}; known: a, b, c"``); ``what`` defaults to the usual wording
(``"a positive int"``, ``"in [0, 1)"``, ...) and may be given where a message says more.
Booleans are never numbers here (``True`` is not a width); ``numpy=True`` also accepts
numpy integers where an int is asked for.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection

import jax
import numpy as np

from fa_jax.errors import InputError


def is_int(v: object, *, numpy: bool = False) -> bool:
    """True for a Python int (numpy integers too with ``numpy=True``), never for a bool."""
    kinds = (int, np.integer) if numpy else int
    return isinstance(v, kinds) and not isinstance(v, bool)


def is_positive_int(v: object, *, numpy: bool = False) -> bool:
    """True for an int >= 1 (see :func:`is_int`)."""
    return is_int(v, numpy=numpy) and v >= 1


def is_number(v: object) -> bool:
    """True for a real number (int, float, numpy scalars), never for a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def show(v: object) -> str:
    """``v`` for a one-line message: an array of rank >= 1 as its dtype and shape, anything else
    as its ``repr`` on one line."""
    if isinstance(v, (np.ndarray, jax.Array)) and np.ndim(v):
        return f"<{np.dtype(v.dtype).name} array of shape {tuple(v.shape)}>"
    return " ".join(repr(v).split())


def traced(args: dict) -> list[str]:
    """The names in ``args`` ({name: value}) whose value holds a ``jax.core.Tracer`` anywhere in
    its pytree: a function called inside ``jax.jit`` or ``jax.vmap`` sees them."""
    return [k for k, v in args.items() if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(v))]


def _fail(name, what, v):
    raise InputError(f"{name} must be {what}, got {v!r}")


def _interval(lo, hi, lo_open, hi_open, hi_text=None) -> str:
    return f"{'(' if lo_open else '['}{lo}, {hi if hi_text is None else hi_text}{')' if hi_open else ']'}"


def integer(name: str, v: object, lo: int = 1, hi: int | None = None, *, hi_open: bool = False, none: bool = False,
            numpy: bool = False, hi_text: str | None = None, what: str | None = None) -> None:
    """``v`` must be an int in ``[lo, hi]`` (``[lo, hi)`` with ``hi_open``; no upper bound when
    ``hi`` is None), or None when ``none``.

    Args:
        name: the argument's name, first word of the message.
        v: the value checked.
        lo, hi: the bounds (default ``lo=1``, ``hi=None``: no upper bound).
        hi_open: exclude ``hi`` itself.
        none: also accept None.
        numpy: also accept numpy integers.
        hi_text: words the upper bound in the message (e.g. ``"steps=100"``).
        what: the whole ``"must be ..."`` wording, replacing the default.

    Raises:
        ValueError: ``"{name} must be {what}, got {v!r}"``.
    """
    if none and v is None:
        return
    ok = is_int(v, numpy=numpy) and v >= lo and (hi is None or (v < hi if hi_open else v <= hi))
    if ok:
        return
    if what is None:
        if hi is not None:
            what = f"an int in {_interval(lo, hi, False, hi_open, hi_text)}"
        else:
            what = {1: "a positive int", 0: "a non-negative int"}.get(lo, f"an int >= {lo}")
        what += " or None" if none else ""
    _fail(name, what, v)


def positive_int(name: str, v: object, *, none: bool = False, numpy: bool = False, what: str | None = None) -> None:
    """``v`` must be an int >= 1 (or None when ``none``): ``"{name} must be a positive int, got v"``.

    Args:
        name, v, none, numpy, what: as for :func:`integer`.
    """
    integer(name, v, 1, none=none, numpy=numpy, what=what)


def number_in(name: str, v: object, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = True,
              what: str | None = None) -> None:
    """``v`` must be a number in the interval from ``lo`` to ``hi`` (default ``[lo, hi)``).

    Args:
        name: the argument's name, first word of the message.
        v: the value checked (a real number, never a bool).
        lo, hi: the interval's ends.
        lo_open, hi_open: exclude ``lo`` (default no) and ``hi`` (default yes).
        what: the whole ``"must be ..."`` wording (default ``"in [lo, hi)"`` and the like).
    """
    if is_number(v) and (lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi):
        return
    _fail(name, what or f"in {_interval(lo, hi, lo_open, hi_open)}", v)


def positive_number(name: str, v: object, *, finite: bool = True, what: str | None = None) -> None:
    """``v`` must be a number > 0 (and finite unless ``finite=False``)."""
    if is_number(v) and v > 0 and (not finite or math.isfinite(v)):
        return
    _fail(name, what or ("a positive finite number" if finite else "> 0"), v)


def boolean(name: str, v: object) -> None:
    """``v`` must be True or False."""
    if not isinstance(v, bool):
        _fail(name, "True or False", v)


def choice(kind: str, v: object, known: Collection[str], hint: str = "") -> None:
    """``v`` must be one of ``known`` (listed in their order): ``"unknown {kind} v; known: ..."``."""
    try:
        ok = v in known
    except TypeError:  # an unhashable value looked up in a dict
        ok = False
    if not ok:
        raise InputError(f"unknown {kind} {v!r}; known: {', '.join(known)}{hint}")
