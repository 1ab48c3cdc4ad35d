"""Layer specs: the names ``fj.cnn.sequential`` parses (``"conv(32,5,stride=2)"``) and their registry.

:data:`LAYERS` maps a name to ``make(*numbers, **numbers) -> layer`` (a layer object of
:mod:`fa_jax.models.conv` or :mod:`fa_jax.models.residual`); :func:`register_layer` adds one;
:func:`parse_layer` turns a spec into a layer. Every parameter-free activation name is a layer too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fa_jax import registry
from fa_jax.errors import InputError
from fa_jax.models import activations
from fa_jax.models import conv as C
from fa_jax.models import dropout as D
from fa_jax.models import residual as R


def _ints(args, lo, hi, name):
    if not lo <= len(args) <= hi:
        raise InputError(f"layer {name!r} takes {lo}..{hi} arguments, got {len(args)}")
    return args


LAYERS = {
    "conv": lambda *a, **k: C.Conv(*_ints(a, 1, 3, "conv"), **k),
    "conv_transpose": lambda *a, **k: C.ConvTranspose(*_ints(a, 1, 3, "conv_transpose"), **k),
    "dense": lambda *a: C.Dense(*_ints(a, 1, 1, "dense")),
    "maxpool": lambda *a, **k: C.Pool("max", *_ints(a, 0, 2, "maxpool"), **k),
    "avgpool": lambda *a, **k: C.Pool("avg", *_ints(a, 0, 2, "avgpool"), **k),
    "global_avgpool": lambda: C.GlobalAvgPool(),
    "flatten": lambda: C.Flatten(),
    "batchnorm": lambda **k: C.BatchNorm(**k),
    "dropout": lambda *a, **k: D.Dropout(*_ints(a, 0, 1, "dropout"), **k),
    "groupnorm": lambda *a, **k: C.GroupNorm("group", *_ints(a, 0, 1, "groupnorm"), **k),
    "layernorm": lambda **k: C.GroupNorm("layer", **k),
    "instancenorm": lambda **k: C.GroupNorm("instance", **k),
    "residual_in": lambda *a, **k: R.ResidualIn(*_ints(a, 1, 2, "residual_in"), **k),
    "residual_out": lambda *a, **k: R.ResidualOut(*_ints(a, 1, 1, "residual_out"), **k),
}
_STRING_KW = ("padding", "norm", "kind")
_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def register_layer(name: str, make: Callable[..., Any], *, replace: bool = False) -> Callable[..., Any]:
    """Add a layer spec: ``make(*numbers, **numbers) -> layer`` (an object like those of
    :mod:`fa_jax.models.conv`) under ``name``, so ``"name(3, k=2)"`` parses to ``make(3, k=2)``;
    a name already registered is refused unless ``replace=True``. Returns ``make``."""
    if not (isinstance(name, str) and re.fullmatch(r"[a-z_]+", name)):
        raise InputError(f"a layer name is lowercase letters and underscores (as specs are parsed), got {name!r}")
    return registry.add(LAYERS, name, make, what="layer", replace=replace)


def parse_layer(spec: Any) -> Any:
    """``"conv(32,5,stride=2,padding=VALID)"``, ``"batchnorm(momentum=0.99)"``, ``"groupnorm(4)"``,
    ``"residual_in(16,2,norm=group,groups=8)"`` -> a layer object; activation names give :class:`Act`.

    Layer objects from :mod:`fa_jax.models.conv` pass through. Unknown names list the known ones.
    """
    if not isinstance(spec, str):
        if hasattr(spec, "out_shape"):
            return spec
        raise InputError(f"a layer is a name like 'conv(32,5)' or a fa_jax.models.conv layer, got {spec!r}")
    m = _SPEC.match(spec)
    name = m.group(1) if m else spec
    if name not in LAYERS:
        if name in activations.ACTIVATIONS and m and m.group(2) is None:
            return C.Act(name)
        known = sorted(LAYERS) + sorted(activations.ACTIVATIONS)
        raise InputError(f"unknown layer {spec!r}; known: {', '.join(known)}")
    args, kw = [], {}
    for tok in filter(None, (t.strip() for t in (m.group(2) or "").split(","))):
        key, _, val = tok.rpartition("=")
        v = val.strip() if key.strip() in _STRING_KW else _number(spec, val)
        (kw.__setitem__(key.strip(), v) if key else args.append(v))
    try:
        return LAYERS[name](*args, **kw)
    except TypeError as err:
        raise InputError(f"bad layer {spec!r}: {err}") from None


def _number(spec, text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise InputError(f"bad layer {spec!r}: {text.strip()!r} is not a number") from None
