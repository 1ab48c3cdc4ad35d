"""The linen adapter: a ``flax.linen`` module run unchanged, its layers handed to the rule.

Every method call of the module's tree goes through one interceptor
(``flax.linen.intercept_methods``): ``__call__`` of a weighted layer (:data:`WEIGHTED`) and of a
:class:`DFAPoint` goes to the pass's :class:`fa_jax.wrap.wiring.Wiring`; the rest runs as
written. A weighted layer's functional forward ``fn(h, p)`` is an unbound clone of the layer
applied to ``{"params": p}``, so its dtype, precision, padding and strides are the user's.

Mutable collections (``batch_stats``) are the model's state; ``train`` is passed to the
module's ``__call__`` under the name it uses (``train``, ``training``, ``is_training``, or
``deterministic`` negated), and dropout draws from ``rngs={"dropout": key}``.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from typing import TYPE_CHECKING, Any

import flax.linen as nn
from flax.core import unfreeze

from fa_jax.errors import InputError
from fa_jax.wrap.wiring import path_name

if TYPE_CHECKING:
    import jax

    from fa_jax.wrap.wiring import Wiring

WEIGHTED = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose, nn.ConvLocal, nn.Einsum)
# layers with params but no weighted map to feed back through: their params get the gradient
# that arrives at their output (BP through them)
TRUE_GRADIENT = (nn.LayerNorm, nn.BatchNorm, nn.GroupNorm, nn.RMSNorm, nn.InstanceNorm, nn.Embed)
TRAIN_ARGS = {"train": False, "training": False, "is_training": False, "deterministic": True}


class DFAPoint(nn.Module):
    """A DFA point (linen): the identity, except that under a DFA-family rule the error's
    projection enters here and no gradient crosses it. Placing any marker in a model replaces
    the default points (the inputs of the weighted layers) by the markers."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x


class DFAOutput(nn.Module):
    """Where a DFA-family rule takes its error (linen): the identity, except that under the DFA family
    the output node sits here, so ``e = dL/dh`` at this array (the layers after it, e.g. a final norm
    and the unembedding, train by BP) and every DFA point before it receives ``e @ B``. At most one
    per model; DFA points come before it. Without it the error is taken at the logits."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return x


def train_arg(module: nn.Module, name: str | None = None) -> tuple[str | None, bool]:
    """``(name, negated)`` of the module's train flag: ``name`` if given (``"deterministic"`` is
    negated), else the first of :data:`TRAIN_ARGS` that ``__call__`` takes; ``(None, False)`` if none,
    with a warning (once per module class and argument) naming a boolean argument of ``__call__``
    that may be a train flag under another name (it is never set: dropout would stay off)."""
    if name is not None:
        return name, TRAIN_ARGS.get(name, False)
    try:
        params = inspect.signature(module.__call__).parameters
    except (TypeError, ValueError):
        return None, False
    for n, negated in TRAIN_ARGS.items():
        if n in params:
            return n, negated
    flags = [p.name for i, p in enumerate(params.values()) if i > 0 and _boolean(p)]
    cls = type(module).__name__
    if flags and (cls, flags[0]) not in _WARNED:
        _WARNED.add((cls, flags[0]))
        warnings.warn(f"{cls}.__call__ takes the boolean argument {flags[0]!r}, which fj.from_flax never sets (train "
                      f"flags it finds by name: {', '.join(TRAIN_ARGS)}): if it turns dropout or batch statistics "
                      f"on, pass fj.from_flax(..., train_arg={flags[0]!r})", stacklevel=4)
    return None, False


_WARNED = set()


def _boolean(param):
    """Whether a ``__call__`` parameter looks like a flag: annotated ``bool`` or with a bool default."""
    return param.annotation in (bool, "bool") or isinstance(param.default, bool)


@dataclasses.dataclass(frozen=True)
class LinenAdapter:
    """A linen module with the name of its train flag (:func:`train_arg`)."""

    module: nn.Module
    train_name: str | None = None
    negated: bool = False

    kind = "linen"
    weighted_names = tuple(t.__name__ for t in WEIGHTED)
    true_gradient_names = tuple(t.__name__ for t in TRUE_GRADIENT) + ("DFAPoint", "DFAOutput")

    def _train_kw(self, train):
        return {} if self.train_name is None else {self.train_name: (not train) if self.negated else bool(train)}

    def init(self, key: jax.Array, x: jax.Array | jax.ShapeDtypeStruct) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params, state)`` (state: the non-params collections) for an input batch ``x``."""
        import jax

        k_params, k_dropout = jax.random.split(key)
        variables = unfreeze(self.module.init({"params": k_params, "dropout": k_dropout}, x, **self._train_kw(False)))
        params = variables.pop("params", {})
        return params, variables

    def run(self, params: Any, state: dict[str, Any] | None, x: jax.Array, *, train: bool, key: jax.Array | None,
            wiring: Wiring) -> tuple[jax.Array, dict[str, Any] | None]:
        """``(y, new_state)``: the module on ``x`` with every call handed to ``wiring``."""
        rngs = {"dropout": key} if key is not None else None
        mutable = sorted(state) if state else False
        wiring.begin()
        with nn.intercept_methods(_interceptor(wiring)):
            out = self.module.apply({"params": params, **(state or {})}, x, rngs=rngs, mutable=mutable,
                                    **self._train_kw(train))
        if mutable:
            y, new = out
            return y, unfreeze(new)
        return out, state

    def describe(self) -> str:
        return repr(self.module)


def _interceptor(wiring):
    def intercept(next_fun, args, kwargs, context):
        m = context.module
        if not wiring.active:
            return next_fun(*args, **kwargs)
        wiring.module(m.path, type(m).__name__)
        if isinstance(m, nn.Embed) and context.method_name == "attend":
            raise InputError(f"layer {path_name(m.path)} (Embed) is used as a tied unembedding (Embed.attend), which "
                             f"fa_jax does not wire: unembed with an nn.Dense layer")
        if context.method_name != "__call__" or not args:
            return next_fun(*args, **kwargs)
        if isinstance(m, DFAPoint):
            return wiring.marker(m.path, args[0])
        if isinstance(m, DFAOutput):
            return wiring.output(m.path, args[0])
        if isinstance(m, nn.RNNCellBase) and len(args) >= 2:
            return wiring.cell(m.path, lambda c, *rest: next_fun(c, *rest, **kwargs), *args)
        if isinstance(m, WEIGHTED):
            p = unfreeze(m.variables.get("params", {}))
            if "kernel" not in p:
                raise InputError(f"layer {path_name(m.path)} ({type(m).__name__}) has no 'kernel' param (its "
                                 f"variables: {sorted(m.variables)}): FA feedback stands for a layer's 'kernel' param")
            clone = m.clone(parent=None)

            def fn(h, p_):
                with wiring.quiet():
                    return clone.apply({"params": p_}, h, *args[1:], **kwargs)

            return wiring.weighted(m.path, type(m).__name__, fn, args[0], p,
                                   lambda h: next_fun(h, *args[1:], **kwargs))
        return next_fun(*args, **kwargs)

    return intercept
