"""A Flax model named on a command line: ``package.module:ClassName`` -> the module object.

:func:`load` is what ``experiments/flax_models.py --model`` uses; any script can reuse it. The
result goes to :func:`fa_jax.from_flax` as is.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from fa_jax.errors import InputError

if TYPE_CHECKING:
    import flax.linen as nn
    from flax import nnx


def is_spec(text: object) -> bool:
    """Whether ``text`` looks like an import path ``package.module:Name`` (it has a colon)."""
    return isinstance(text, str) and ":" in text


def load(spec: str, n_out: int | None = None, *,
         what: str = "--model") -> nn.Module | nnx.Module | Callable[[nnx.Rngs], nnx.Module]:
    """The Flax model that ``spec`` (``"package.module:Name"``, ``Name`` may be dotted) names.

    The module is imported as Python would (``sys.path``, to which the current directory is
    appended if absent, so a file ``./mymodels.py`` is ``mymodels:Net``); ``Name`` may be:

    - a ``flax.linen.Module`` subclass: instantiated with no arguments, or with ``n_out=n_out``
      when its constructor takes ``n_out`` (and ``n_out`` is given), so every other field needs a default;
    - a ``flax.nnx.Module`` subclass: returned as the factory ``rngs -> Name(rngs=rngs)`` (with
      ``n_out=`` likewise), which :func:`fa_jax.from_flax` calls once per seed;
    - a linen or NNX module *instance* (e.g. ``model = Net(features=64)`` in that file): returned as is.

    Args:
        spec: the import path.
        n_out: the task's number of outputs, passed as ``n_out=`` where the class takes it.
        what: the option named in error messages (default ``"--model"``).

    Returns:
        A linen module, an NNX module, or a function ``rngs -> nnx.Module``.

    Raises:
        ValueError (one line) for a malformed spec, a module that does not import (its error's
        first line), a missing name, a name that is not a Flax module, or a class that cannot be
        made with those arguments.
    """
    if not is_spec(spec):
        raise InputError(f"{what} {spec!r} is not an import path package.module:ClassName")
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr or ":" in attr or not all(p.isidentifier() for p in mod_name.split(".")) or \
            not all(p.isidentifier() for p in attr.split(".")):
        raise InputError(f"{what} {spec!r} is not an import path package.module:ClassName")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        mod = importlib.import_module(mod_name)
    except Exception as err:  # noqa: BLE001  (any failure to import is bad input here)
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{what} {spec!r}: cannot import {mod_name} ({type(err).__name__}: {msg})") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{what} {spec!r}: {getattr(obj, '__name__', mod_name)} has no attribute {part!r}")
        obj = getattr(obj, part)
    return _instantiate(obj, spec, n_out, what)


def _flax_kind(obj):
    """``("linen"|"nnx", is_class)`` for a Flax module class or instance, else None."""
    import flax.linen as nn
    from flax import nnx

    for kind, base in (("linen", nn.Module), ("nnx", nnx.Module)):
        if isinstance(obj, type) and issubclass(obj, base):
            return kind, True
        if isinstance(obj, base):
            return kind, False
    return None


def _instantiate(obj, spec, n_out, what):
    kind = _flax_kind(obj)
    if kind is None:
        desc = f"the class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise InputError(f"{what} {spec!r} is {desc}, not a Flax module (a flax.linen.Module or flax.nnx.Module "
                         f"class or instance)")
    kind, is_class = kind
    if not is_class:
        return obj
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        params = {}
    kw = {"n_out": n_out} if n_out is not None and "n_out" in params else {}
    if kind == "nnx":
        missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in kw
                   and n != "rngs" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if missing:
            raise InputError(f"{what} {spec!r}: {obj.__name__} needs {', '.join(missing)}; a model named by import "
                             f"path is made with rngs= (and n_out=) only: give its other arguments defaults")
        return lambda rngs: obj(**kw, rngs=rngs)
    try:
        return obj(**kw)
    except TypeError as err:
        raise InputError(f"{what} {spec!r}: cannot make {obj.__name__}({', '.join(f'{k}={v}' for k, v in kw.items())})"
                         f" ({str(err).splitlines()[0]}); a model named by import path is made with no arguments "
                         f"(or n_out=): give its fields defaults") from None
