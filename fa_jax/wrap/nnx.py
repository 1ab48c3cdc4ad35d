"""The NNX adapter: a ``flax.nnx`` module run on a fresh copy, its layers handed to the rule.

``params``: ``nnx.to_pure_dict`` of the model's ``nnx.Param`` variables, nested dicts keyed by
attribute names and list indices (``params["layers"][0]["kernel"]``: the paths of the wiring and
of FA feedback). ``state``: the pure dict of its other non-RNG variables (``nnx.BatchStat``:
batch norm's running ``mean`` / ``var``); ``{}`` when none.

A run merges the graphdef with params, state and fresh RNG keys (every ``RngKey`` of the model is
drawn from the run's key, key 0 without one; counts start at 0) into a new module, puts it in
``train()`` / ``eval()`` mode, and swaps the ``__class__`` of its weighted layers
(:data:`WEIGHTED`), :class:`NNXDFAPoint` markers and every module holding params to a cached
subclass whose ``__call__`` reports to the pass's :class:`fa_jax.wrap.wiring.Wiring` (the path
is looked up by the object's id). A weighted layer goes to ``wiring.weighted`` with
``fn(h, p)`` = the original class's ``__call__`` on the layer merged with params ``p`` (so its
dtype, precision, padding and strides are the user's). The user's module and classes are never
changed.

Init: a factory ``rngs -> nnx.Module`` is called with ``nnx.Rngs(key)`` (its own initializers). An
instance does not keep its initializers, so its params are redrawn per key with each layer type's
default ones (flax's: ``lecun_normal`` kernels, zero biases, unit scales, embeddings
``variance_scaling(1, "fan_in", "normal", out_axis=0)``) and its batch statistics reset (mean 0, var 1).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import nnx

from fa_jax.errors import InputError
from fa_jax.wrap.wiring import path_name

if TYPE_CHECKING:
    from fa_jax.wrap.wiring import Wiring

WEIGHTED = (nnx.Linear, nnx.LinearGeneral, nnx.Conv, nnx.ConvTranspose, nnx.Einsum)
NORMS = (nnx.LayerNorm, nnx.BatchNorm, nnx.GroupNorm, nnx.RMSNorm, nnx.InstanceNorm)
# layers with params but no weighted map to feed back through: BP through them
TRUE_GRADIENT = NORMS + (nnx.Embed,)
_EMBED_INIT = nnx.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)


class NNXDFAPoint(nnx.Module):
    """A DFA point (NNX): the identity, except that under a DFA-family rule the error's projection
    enters here and no gradient crosses it. Placing any marker in a model replaces the default
    points (the inputs of the weighted layers) by the markers."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x


# -- interception ------------------------------------------------------------------------------
_LOCAL = threading.local()  # .routes: (wiring, {id(module): path}) of this thread's passes, innermost last
_ROUTED = {}  # original class -> its routed subclass


def _routes():
    if not hasattr(_LOCAL, "routes"):
        _LOCAL.routes = []
    return _LOCAL.routes


def _routed(cls):
    if cls not in _ROUTED:
        _ROUTED[cls] = type(cls.__name__, (cls,), {"__call__": _call, "_fa_base": cls, "__module__": cls.__module__,
                                                   "__qualname__": cls.__qualname__})
    return _ROUTED[cls]


def _call(self, *args, **kwargs):
    base = type(self)._fa_base
    routes = _routes()
    wiring, paths = routes[-1] if routes else (None, {})
    path = paths.get(id(self))
    if wiring is not None and path is None and wiring.active:  # a copy that an NNX transform made of a layer
        raise InputError(f"a {base.__name__} layer is called inside an NNX transform (nnx.scan, nnx.vmap, nnx.remat, "
                         f"nnx.jit, ...), which runs a copy of it that fa_jax's routing does not reach: call it outside "
                         f"the transform, or write that part in flax.linen (nn.scan, nn.remat, ...), whose lifted "
                         f"transforms fa_jax wires")
    if wiring is None or path is None or not wiring.active:
        return base.__call__(self, *args, **kwargs)
    wiring.module(path, base.__name__)
    if not args:
        return base.__call__(self, *args, **kwargs)
    if issubclass(base, NNXDFAPoint):
        return wiring.marker(path, args[0])
    if not issubclass(base, WEIGHTED):
        return base.__call__(self, *args, **kwargs)
    graphdef, params, rest = nnx.split(self, nnx.Param, ...)
    p = nnx.to_pure_dict(params)
    if "kernel" not in p:
        raise InputError(f"layer {path_name(path)} ({base.__name__}) has no 'kernel' param (its params: {sorted(p)}): "
                         f"FA feedback stands for a layer's 'kernel' param")

    def fn(h, p_):  # the layer's own forward with params p_, not intercepted
        with wiring.quiet():
            return base.__call__(nnx.merge(graphdef, p_, rest), h, *args[1:], **kwargs)

    return wiring.weighted(path, base.__name__, fn, args[0], p, lambda h: base.__call__(self, h, *args[1:], **kwargs))


# -- the adapter -------------------------------------------------------------------------------
def _nest(pairs):
    out = {}
    for path, v in pairs:
        node = out
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = v
    return out


def _like(tree, ref):
    """``tree`` restricted to the keys of ``ref`` (the state's own variables, nothing sown)."""
    return {k: _like(tree[k], v) if isinstance(v, dict) else tree[k] for k, v in ref.items()}


def _flat(state):
    return [(tuple(p), v) for p, v in nnx.to_flat_state(state)]


@dataclasses.dataclass(frozen=True)
class NNXAdapter:
    """An NNX model: its graphdef and, per variable, ``(path, kind, shape, dtype)`` (module doc).

    params/state/rngs: the variables of each group; plan: for an instance, how each param and
    state variable is (re)drawn; factory: the function ``rngs -> module``, or None.
    """

    graphdef: object
    qualname: str
    params: tuple
    state: tuple
    rngs: tuple
    plan: tuple | None = None
    factory: object = None
    train_name: str | None = None

    kind = "nnx"
    weighted_names = tuple(t.__name__ for t in WEIGHTED)
    true_gradient_names = tuple(t.__name__ for t in TRUE_GRADIENT) + ("NNXDFAPoint",)

    def init(self, key: jax.Array, x: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params, state)`` drawn from ``key`` (module doc); ``x`` is not needed by NNX."""
        if self.factory is not None:
            _, params, _, state = nnx.split(self.factory(nnx.Rngs(key)), nnx.Param, nnx.RngState, ...)
            return nnx.to_pure_dict(params), nnx.to_pure_dict(state)
        keys = jax.random.split(key, max(len(self.plan), 1))
        drawn = [(path, _draw(how, k, shape, jnp.dtype(dtype))) for (path, how, shape, dtype), k in zip(self.plan, keys)]
        n = len(self.params)
        return _nest(drawn[:n]), _nest(drawn[n:])

    def _rng_values(self, key):
        key = jax.random.key(0) if key is None else key
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        out = []
        for i, (path, kind, shape, dtype) in enumerate(self.rngs):
            if kind == "RngKey":
                k = jax.random.fold_in(key, i)
                out.append((path, jax.random.split(k, shape) if shape else k))
            else:
                out.append((path, jnp.zeros(shape, dtype)))
        return _nest(out)

    def run(self, params: Any, state: dict[str, Any] | None, x: jax.Array, *, train: bool, key: jax.Array | None,
            wiring: Wiring) -> tuple[jax.Array, dict[str, Any] | None]:
        """``(y, new_state)``: a fresh copy of the model on ``x``, every call handed to ``wiring``."""
        model = nnx.merge(self.graphdef, params, state or {}, self._rng_values(key))
        if self.train_name is not None:
            if train:
                model.train()
            else:
                model.eval()
        owners = {p[:-1] for p, *_ in self.params}
        paths = {}
        for path, m in nnx.iter_modules(model):
            if isinstance(m, nnx.RNN):
                raise InputError(f"layer {path_name(path)} (nnx.RNN) is not wired: its nnx.scan runs a rebuilt copy of "
                                 f"the cell that fa_jax's routing does not reach; write the recurrent net in flax.linen (nn.RNN), whose "
                                 f"cells every rule runs")
            if isinstance(m, (WEIGHTED, NNXDFAPoint)) or tuple(path) in owners:
                object.__setattr__(m, "__class__", _routed(type(m)))
                paths[id(m)] = tuple(path)
        _routes().append((wiring, paths))
        wiring.begin()
        try:
            y = model(x)
        finally:
            _routes().pop()
        if train and state:
            return y, _like(nnx.to_pure_dict(nnx.state(model)), state)
        return y, state

    def describe(self) -> str:
        shapes = ", ".join(f"{path_name(p)} {s}" for p, _, s, _ in self.params)
        head = f"{getattr(self.factory, '__qualname__', 'factory')} -> " if self.factory is not None else ""
        return f"{head}{self.qualname}({shapes})"


def _draw(how, key, shape, dtype):
    if how == "zeros":
        return jnp.zeros(shape, dtype)
    if how == "ones":
        return jnp.ones(shape, dtype)
    if how == "embed":
        return _EMBED_INIT(key, shape, dtype)
    flat = shape if how == "lecun" else how[1]  # LinearGeneral draws its kernel flat (in, out), then reshapes
    return nnx.initializers.lecun_normal()(key, flat, dtype).reshape(shape)


def _default(module, name, shape):
    """How an instance's variable ``module.name`` is redrawn (its layer type's default), or None."""
    if isinstance(module, WEIGHTED) and name == "bias":
        return "zeros"
    if isinstance(module, nnx.LinearGeneral) and name == "kernel":
        nb, ni = len(module.batch_axis), len(module.in_features)
        return ("flat", (math.prod(shape[:nb + ni]), math.prod(shape[nb + ni:])))
    if isinstance(module, WEIGHTED) and name == "kernel":
        return "lecun"
    if isinstance(module, nnx.Embed) and name == "embedding":
        return "embed"
    if isinstance(module, NORMS) and name in ("scale", "bias"):
        return "ones" if name == "scale" else "zeros"
    if isinstance(module, nnx.BatchNorm) and name in ("mean", "var"):
        return "zeros" if name == "mean" else "ones"
    return None


def _spec(flat):
    return tuple((p, type(v).__name__, tuple(v.shape), str(v.dtype)) for p, v in flat)


def make_adapter(module: nnx.Module | Callable[[nnx.Rngs], nnx.Module]) -> NNXAdapter:
    """The adapter of an ``nnx.Module`` instance or of a function ``rngs -> nnx.Module`` (module doc)."""
    factory = None
    if not isinstance(module, nnx.Module):
        factory = module
        try:
            module = nnx.eval_shape(lambda: factory(nnx.Rngs(0)))
        except TypeError as e:
            raise InputError(f"from_flax: a function passed as the model is called as fn(rngs) -> nnx.Module: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if not isinstance(module, nnx.Module):
            raise InputError(f"from_flax: a function passed as the model must return an nnx.Module (given "
                             f"nnx.Rngs), got {type(module).__name__}")
    graphdef, params, rngs, state = nnx.split(module, nnx.Param, nnx.RngState, ...)
    params, rngs, state = _flat(params), _flat(rngs), _flat(state)
    modules = {tuple(p): m for p, m in nnx.iter_modules(module)}
    plan = None
    if factory is None:
        plan = []
        for path, v in params + state:
            owner = modules.get(path[:-1])
            how = None if owner is None else _default(owner, path[-1], tuple(v.shape))
            if how is None:
                what = "a param" if isinstance(v, nnx.Param) else f"a variable ({type(v).__name__})"
                raise InputError(f"{path_name(path)} is {what} of {type(owner).__name__ if owner else 'no module'}, "
                                 f"whose default initializer fa_jax does not know: pass a function rngs -> module "
                                 f"instead of the instance (its own initializers then apply)")
            plan.append((path, how, tuple(v.shape), jnp.dtype(v.dtype).name))
        plan = tuple(plan)
    train = any(hasattr(m, "deterministic") or hasattr(m, "use_running_average") for m in modules.values())
    return NNXAdapter(graphdef=graphdef, qualname=type(module).__qualname__, params=_spec(params),
                      state=_spec(state), rngs=_spec(rngs), plan=plan, factory=factory,
                      train_name="train" if train else None)
