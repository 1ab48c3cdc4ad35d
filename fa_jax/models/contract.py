"""The model contract: what ``fj.sweep``, the rules, the diagnostics and the memory estimate need.

Every built-in model (:class:`fa_jax.MLP`, :class:`fa_jax.NormMLP`, :class:`fa_jax.models.cnn.CNN`)
satisfies it, and so may any object a user writes. Required (:class:`Model`):

- ``init(key) -> params``: draws the params pytree from a ``jax.random`` key (traceable: a
  sweep vmaps it over seeds);
- ``apply(params, x, *, rule, feedback, **kw) -> logits``: logits ``(batch, n_out)`` for
  inputs ``x`` ``(batch, *input_shape)``; ``jax.grad`` through it is ``rule``'s update. ``fj.sweep``
  passes the resolved :class:`fa_jax.Rule` (``fj.rules.get(rule)`` resolves a name too); it
  compares equal to its name, so ``rule == "bp"`` works either way;
- ``n_in``: features per example (``prod(input_shape)``); ``n_out``: outputs (logits).

The model must be hashable (``fj.sweep`` caches its compiled programs by model; a frozen
dataclass is) and its ``repr`` stable across processes if a sweep checkpoints (the repr is
part of the checkpoint's fingerprint).

Optional, each with the default its function below gives:

- ``input_shape``: the shape of one example, e.g. ``(H, W, C)``; default ``(n_in,)`` (:func:`input_shape`);
- ``stochastic``: True when ``apply`` takes ``train=`` and ``key=`` (dropout); ``fj.sweep``
  then passes ``train=True`` and a fresh key every step; default False (:func:`is_stochastic`);
- ``stateful``: True when ``apply`` takes ``stats=`` and ``train=`` and returns
  ``(logits, new_stats)`` (batch norm); then ``init_stats() -> stats`` is required too.
  Default False (:func:`is_stateful`);
- ``layers``: one ``layer(p, h, op) -> h'`` per weighted layer, wired by the rules of
  :mod:`fa_jax.rules.core` (``apply`` passes them to ``rule.apply_layers``), with ``params`` a list of
  one entry per layer; needed by the diagnostics and the representation maps (:func:`layers`);
- ``weight_shapes``: one kernel shape per layer, ``(fan_in, fan_out)`` or ``(kh, kw, c_in,
  c_out)``; FA-family feedback is shaped like them (:func:`weight_shapes`);
- ``hidden_shapes``: the feature shape of each hidden layer's output (without the batch
  axis); DFA-family feedback is ``(n_out, prod(shape))`` per entry (:func:`hidden_shapes`);
- ``units``: activations per example, one entry per layer, for the memory estimate; default
  the hidden sizes and ``n_out`` (:func:`units`);
- ``init_name``: the weight initializer's name (:mod:`fa_jax.models.init`), which the
  ``nokland_fa`` feedback scheme draws ``B`` with (:func:`init_name`);
- ``kernels(tree) -> list``: the kernel of every weighted layer of a params-shaped ``tree``, in
  ``weight_shapes`` order; default ``[p["w"] for p in tree]`` (:func:`kernels`);
- ``feedback_tree(rule, matrices)`` / ``feedback_list(rule, feedback)``: the model's own feedback
  structure from the list ``init_feedback`` draws, and back; default the list itself
  (:func:`pack_feedback`, :func:`unpack_feedback`; a wrapped Flax model mirrors its params);
- ``probes``: True when ``apply`` takes ``probes=`` (one zero array per ``hidden_shapes`` entry,
  added to that hidden activation), which the diagnostics differentiate to read the signal each
  hidden activation receives; without it they wire ``layers`` themselves;
- ``check_rule(rule)``: a one-line ValueError for a :class:`fa_jax.Rule` the model cannot run;
- ``source_size``: the size of the DFA family's error ``e`` (the rows of each ``B``); default
  ``n_out`` (:func:`source_size`; a wrapped model that takes its error at a ``DFAOutput`` marker);
- ``token_axes``: the output's axes between the batch and ``n_out``, e.g. ``(T,)`` for per-token
  logits (batch, T, n_out); the points' arrays carry them too (:func:`token_axes`; default ``()``).

:func:`check_model` names, in one line, what a model lacks; ``fj.sweep`` calls it first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jax

from fa_jax import checks
from fa_jax.errors import InputError

if TYPE_CHECKING:
    from fa_jax.rules.rule import Layer, Rule


@runtime_checkable
class Model(Protocol):
    """The required members (module doc). ``isinstance(m, Model)`` checks they are present."""

    n_in: int
    n_out: int

    def init(self, key: jax.Array) -> Any:
        """params pytree from a ``jax.random`` key."""

    def apply(self, params: Any, x: jax.Array, *, rule: str | Rule = "bp", feedback: Any = None, **kw: Any) -> Any:
        """logits (batch, n_out), or ``(logits, new_stats)`` for a stateful model."""


@runtime_checkable
class LayeredModel(Model, Protocol):
    """A model the rules wire layer by layer: FA/DFA feedback shapes, diagnostics, representations."""

    layers: Sequence[Layer]
    weight_shapes: Sequence[tuple[int, ...]]
    hidden_shapes: Sequence[tuple[int, ...]]


@runtime_checkable
class StatefulModel(Model, Protocol):
    """The members of a model with explicit state (batch-norm running statistics); whether it has
    any is ``stateful`` (:func:`is_stateful`): a CNN without batch norm has both members, False."""

    stateful: bool

    def init_stats(self) -> Any:
        """The initial state, passed to ``apply(..., stats=)``."""


REQUIRED = {
    "init": "init(key) -> params",
    "apply": "apply(params, x, *, rule, feedback) -> logits",
    "n_in": "n_in (features per example)",
    "n_out": "n_out (outputs)",
}


def _lacks(model, name: str, why: str):
    return InputError(f"this model ({type(model).__name__}) has no {name}, which {why} needs "
                      f"(see fa_jax.models.contract)")


def _optional(model, name: str, default):
    return getattr(model, name, default)


def _member(model, name: str, why: str):
    value = _optional(model, name, None)
    if value is None:
        raise _lacks(model, name, why)
    return value


def is_stateful(model: Model) -> bool:
    """``model.stateful``; False when absent."""
    return bool(_optional(model, "stateful", False))


def is_stochastic(model: Model) -> bool:
    """``model.stochastic``; False when absent."""
    return bool(_optional(model, "stochastic", False))


def source_size(model: Model) -> int:
    """``model.source_size`` (the DFA family's error size); ``n_out`` when absent."""
    return int(_optional(model, "source_size", None) or model.n_out)


def token_axes(model: Model) -> tuple[int, ...]:
    """``model.token_axes`` (the output's axes between batch and ``n_out``); ``()`` when absent."""
    return tuple(_optional(model, "token_axes", None) or ())


def input_shape(model: Model) -> tuple[int, ...]:
    """``model.input_shape`` (one example's shape); ``(n_in,)`` when absent."""
    shape = _optional(model, "input_shape", None)
    return tuple(shape) if shape else (model.n_in,)


def layers(model: Model, why: str = "this rule") -> list[Layer]:
    """``model.layers`` (one ``layer(p, h, op) -> h'`` each); a one-line ValueError when absent."""
    return list(_member(model, "layers", why))


def weight_shapes(model: Model, why: str = "FA-family feedback") -> list[tuple[int, ...]]:
    """``model.weight_shapes``, one kernel shape per layer; a one-line ValueError when absent."""
    return [tuple(s) for s in _member(model, "weight_shapes", why)]


def hidden_shapes(model: Model, why: str = "DFA-family feedback") -> list[tuple[int, ...]]:
    """``model.hidden_shapes``, one feature shape per hidden layer; a one-line ValueError when absent."""
    return [tuple(s) for s in _member(model, "hidden_shapes", why)]


def init_name(model: Model, why: str = "this feedback scheme") -> str:
    """``model.init_name``, the weight initializer's name; a one-line ValueError when absent."""
    return _member(model, "init_name", why)


def kernels(model: Model | None, tree: Any) -> list[Any]:
    """The kernel of every weighted layer of the params-shaped ``tree`` (params, gradients), in
    ``weight_shapes`` order: ``model.kernels(tree)`` when present, else ``[p["w"] for p in tree]``."""
    own = _optional(model, "kernels", None)
    return list(own(tree)) if own is not None else [p["w"] for p in tree]


def pack_feedback(model: Model, rule: Rule, matrices: list[jax.Array] | None) -> Any:
    """The feedback ``rule`` passes to ``model.apply`` from the list of matrices drawn for its
    ``feedback_shapes``: ``model.feedback_tree(rule, matrices)`` when present, else the list."""
    own = _optional(model, "feedback_tree", None)
    return own(rule, matrices) if own is not None and matrices is not None else matrices


def unpack_feedback(model: Model | None, rule: Rule, feedback: Any) -> Any:
    """The inverse of :func:`pack_feedback`: a list in ``feedback_shapes`` order (one-line
    ValueError, from the model, for a structure it does not recognise)."""
    own = _optional(model, "feedback_list", None)
    return own(rule, feedback) if own is not None and feedback is not None else feedback


def units(model: Model) -> list[int]:
    """Activations per example, one entry per layer: ``model.units`` when present, else the
    hidden sizes and ``n_out`` (only ``n_out`` for a model without ``hidden_shapes``)."""
    own = _optional(model, "units", None)
    if own is not None:
        return [int(u) for u in own]
    hidden = _optional(model, "hidden_shapes", None) or []
    return [math.prod(h) for h in hidden] + [model.n_out]


def n_layers(model: Model) -> int:
    """Weighted layers: ``len(weight_shapes)`` when present, else ``len(units(model))``."""
    shapes = _optional(model, "weight_shapes", None)
    return len(shapes) if shapes is not None else len(units(model))


def dense_sizes(model: Model) -> list[int] | None:
    """``[n_in, h_1, ..., n_out]`` of a chain of dense layers on flat inputs (an MLP), else None."""
    shapes = _optional(model, "weight_shapes", None)
    if not shapes or input_shape(model) != (model.n_in,) or any(len(s) != 2 for s in shapes):
        return None
    if any(a[1] != b[0] for a, b in zip(shapes[:-1], shapes[1:])):
        return None
    return [shapes[0][0]] + [s[1] for s in shapes]


def n_params(model: Model) -> int:
    """Trainable scalars of ``model`` (from its init's shapes; nothing is computed)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return sum(int(math.prod(x.shape)) for x in jax.tree.leaves(shapes))


def check_model(model: object) -> None:
    """One-line ValueError naming what ``model`` lacks of the contract (module doc)."""
    missing = [desc for name, desc in REQUIRED.items() if not hasattr(model, name)]
    if missing:
        raise InputError(f"this model ({type(model).__name__}) lacks {', '.join(missing)}: a model for fj.sweep "
                         f"needs {', '.join(REQUIRED)} (see fa_jax.models.contract)")
    for name in ("init", "apply"):
        if not callable(getattr(model, name)):
            raise InputError(f"model.{name} must be a function ({REQUIRED[name]}), got {getattr(model, name)!r}")
    for name in ("n_in", "n_out"):
        checks.positive_int(f"model.{name}", getattr(model, name), numpy=True)
    if is_stateful(model) and not callable(_optional(model, "init_stats", None)):
        raise _lacks(model, "init_stats() -> stats", "a stateful model (stateful=True)")
    try:
        hash(model)
    except TypeError:
        raise InputError(f"this model ({type(model).__name__}) is not hashable: fj.sweep caches its compiled "
                         f"programs by model (make it a frozen dataclass)") from None
