"""The one interface of every learning rule: :class:`Rule`, its :class:`Family`, and what its hooks get.

The update is ``jax.grad`` of what the rule says. The train step (:func:`fa_jax.make_train_step`)
only ever calls ``jax.value_and_grad`` of :meth:`Rule.train_objective`, so a rule is either

- a **wiring** (``wire``, or the wiring its family implies): ``jax.grad`` of the loss through
  ``model.apply(params, x, rule=...)`` is the update (bp, the FA and DFA families, pepita, the
  lazy baselines); or
- an **objective** (``objective``): a pure function of the params, the batch, the feedback and a
  key whose ``jax.grad`` *is* the update. Any update ``g`` is the gradient of
  ``vdot(stop_gradient(g), params)``, so every rule fits; :func:`surrogate` builds such an
  objective whose *value* is still the training loss (what the step logs and checks for divergence).

Every hook is optional, with today's behaviour as its default. Signatures (``model`` has the model
contract, :mod:`fa_jax.models.contract`; ``feedback`` is the rule's non-trainable state in the
model's structure, ``fj.init_feedback``):

- ``wire(layers, params, x, feedback[, targets=]) -> y``: the rule's forward pass over a layered
  model's ``layers`` (``layers[l](p, h, op) -> h'``); None: the wiring its family implies
  (:meth:`Rule.apply_layers`);
- ``objective(model, params, batch, feedback, key) -> (value, Aux)``: ``batch`` a :class:`Batch`;
  ``jax.grad`` of ``value`` w.r.t. ``params`` is the update; ``value`` is the logged training loss;
  :class:`Aux` carries the logits (batch accuracy), a stateful model's new statistics and the rule's
  own ``metrics`` ({name: scalar}, e.g. a final energy), which reach ``metrics.jsonl`` per seed;
- ``predict(model, params, x, feedback) -> logits``: the rule's prediction when it is not the plain
  forward pass (default: ``model.apply`` in eval mode);
- ``feedback_shapes(model) -> [shape, ...]``: one shape per feedback matrix (None: no feedback);
- ``init(key, model, params, dtype) -> feedback``: draws feedback that is not a list of random
  matrices (the lazy baselines' frozen layer, pepita's F);
- ``init_params(key, model, params) -> params``: the model's params with the rule's own trainable
  extras added (local auxiliary heads, forward-forward's label weights), e.g. as new entries of a
  layer's dict, which the model's layers do not read; the optimizer trains them like any param;
- ``trainable(params) -> params``: frozen layers' entries replaced by ``{}``;
- ``check_model(model)``: raises a one-line :class:`fa_jax.errors.InputError` for a model the rule
  cannot run;
- ``update_feedback(params, feedback, updates, key) -> (params, feedback)``: evolving feedback (kp,
  wm, brsf), called after the optimizer inside the compiled step instead of ``optax.apply_updates``;
- ``output(y, hs, feedback, targets) -> y``: a DFA-family rule's output node tying the output to the
  hidden activations (the wrapper of Flax models places it);
- ``backward(w, B) -> B_used``: an FA-family rule's backward matrix from a layer's weight and its
  fixed feedback (None: ``B`` itself);
- ``wire_model(model, params, x, feedback, *, rule, train, key, probes) -> y``: the wiring of a rule with
  its own ``wire`` on a model that has no ``layers`` (a wrapped Flax model; pepita), where the
  per-layer interface below does not describe it.

What runs on a wrapped Flax model (``fj.from_flax``): the wrapper asks the rule, at every weighted
layer, for its op (:meth:`Rule.op`), at every hidden point what passes on (:meth:`Rule.point`) and at
the output for its node (``output``) — the same interface fa_jax's own layers use — so a rule whose
wiring is its family's (:attr:`Rule.layerwise`) runs there unchanged, and an objective rule runs
wherever its objective's own ``model.apply`` calls do.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.rules.ops import FALinear, LayerOp, linear

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

Wire = Callable[..., Any]
Layer = Callable[[Any, jax.Array, LayerOp], jax.Array]  # layer(p, h, op) -> h', a layered model's layers[l]


class Family(str, enum.Enum):
    """What kind of credit assignment a rule does (a ``str``: ``Family.FA == "fa"``).

    The diagnostics read it (weight alignment for FA and DFA), and it fixes what a rule without its
    own ``wire`` does at each weighted layer, hidden point and output (:meth:`Rule.apply_layers`).
    """

    BP = "bp"            # the plain chain: backpropagation
    FA = "fa"            # every weighted layer's input receives delta @ B.T (fa, usf, frsf, brsf, kp, wm)
    DFA = "dfa"          # hidden points cut from the graph, fed e @ B_l by one output node (dfa, sdfa, drtp)
    FORWARD = "forward"  # forward passes only, no backward pass (pepita)
    LAZY = "lazy"        # a different, partly frozen network (ntk, random features)
    LOCAL = "local"      # each block learns from its own objective, no global backward pass


# the hidden points a family cuts from the graph: they pass on stop_gradient(h)
_CUT = (Family.DFA, Family.FORWARD)
# wire functions that are exactly their family's wiring (fa_jax.rules.core's bp, fa, dfa): {fn: family}
_FAMILY_WIRES: dict = {}


def family_wiring(family: Family) -> Callable[[Wire], Wire]:
    """Decorator: declares that a wire function is exactly ``family``'s wiring (:meth:`Rule.apply_layers`),
    so a rule with that family and this wire still runs on any model (:attr:`Rule.layerwise`)."""

    def mark(fn: Wire) -> Wire:
        _FAMILY_WIRES[fn] = Family(family)
        return fn

    return mark


@dataclasses.dataclass(frozen=True)
class Batch:
    """One training batch, as an objective sees it.

    x: (batch, *input_shape) inputs; y: the labels; loss: the training loss
    ``loss(logits, y) -> scalar`` (a batch mean, label smoothing applied); stats: a stateful
    model's running statistics (batch norm), else None.
    """

    x: Any
    y: Any
    loss: Callable
    stats: Any = None


class Aux(NamedTuple):
    """What an objective returns beside its value (a pytree).

    logits: the batch's logits (the step's mini-batch accuracy); stats: a stateful model's new
    statistics, else None; metrics: the rule's own measures {name: scalar} (e.g. a final energy),
    averaged like the loss and written to ``metrics.jsonl`` per seed.
    """

    logits: Any
    stats: Any = None
    metrics: dict = {}


Objective = Callable[[Any, Any, Batch, Any, jax.Array], tuple[jax.Array, Aux]]
Predict = Callable[[Any, Any, Any, Any], Any]
# update_feedback(params, feedback, updates, key) -> (params, feedback): evolving feedback (kp, wm, brsf)
UpdateFeedback = Callable[[Any, Any, Any, jax.Array], tuple[Any, Any]]


def surrogate(loss: jax.Array, updates: Any, params: Any) -> jax.Array:
    """A scalar equal to ``loss`` whose gradient w.r.t. ``params`` is ``updates`` exactly.

    ``stop_gradient(loss) + v - stop_gradient(v)`` with ``v = sum vdot(stop_gradient(g), p)`` over
    the leaves of ``updates`` and ``params`` (same structure; ``{}`` entries: no update). The way
    to write a rule whose update is not the gradient of anything as an objective.
    """
    sg = jax.lax.stop_gradient
    leaves = zip(jax.tree.leaves(updates), jax.tree.leaves(params), strict=True)
    v = sum((jnp.vdot(sg(g).astype(p.dtype), p) for g, p in leaves), jnp.zeros((), jnp.result_type(loss)))
    return sg(loss) + (v - sg(v)).astype(jnp.result_type(loss))


def _options(options) -> tuple:
    """The declared options as a sorted tuple of (name, value); a one-line error for a bad one."""
    items = options.items() if isinstance(options, Mapping) else options
    out = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and item[0].isidentifier()):
            raise InputError(f"Rule options are name=value pairs with identifier names, got {item!r}")
        try:
            hash(item[1])
        except TypeError:
            raise InputError(f"Rule option {item[0]}={item[1]!r} must be hashable (a number, string, bool, "
                             f"None or tuple): options are part of the compile-cache key") from None
        out.append(item)
    return tuple(sorted(out))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Rule:
    """A learning rule (module doc): a name, its hooks, its family and its options.

    A rule compares equal to another with the same fields, and to its name (``rule == "bp"``: a
    model's ``apply`` written for names keeps working when ``fj.sweep`` passes it the resolved rule);
    its hash is its name's. ``str(rule)`` is its name.

    Attributes:
        name: the name or spec it is known by (``"kp(lam=0.99)"``); recorded in configs and checkpoints.
        wire: ``wire(layers, params, x, feedback[, targets=]) -> y``, or None: the family's wiring.
        feedback_shapes: ``(model) -> [shape, ...]``, or None: the rule needs no feedback.
        doc: one line for tables and ``--help``.
        family: a :class:`Family` (a string is converted; default BP).
        options: the resolved options ``{name: value}`` (kept sorted as a tuple of pairs): declared,
            hashable, part of the compile-cache key; :func:`fa_jax.rules.core.get` fills them from a
            spec and the factory's defaults.
        backward, init, trainable, check_model, update_feedback, output, wire_model, init_params: module doc.
        needs_targets: ``wire`` / ``output`` take ``targets=`` (the batch labels; drtp).
        objective, predict: module doc.
    """

    name: str
    wire: Wire | None = None
    feedback_shapes: Callable[[Any], list] | None = None
    doc: str = ""
    init: Callable | None = None
    trainable: Callable | None = None
    check_model: Callable[[Any], None] | None = None
    family: Family = Family.BP
    backward: Callable | None = None
    update_feedback: Callable | None = None
    needs_targets: bool = False
    output: Callable | None = None
    objective: Objective | None = None
    predict: Predict | None = None
    options: tuple = ()
    wire_model: Callable | None = None
    init_params: Callable | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"Rule name must be a non-empty string, got {self.name!r}")
        family = Family.BP if self.family is None else self.family
        try:
            family = Family(family)
        except ValueError:
            raise InputError(f"Rule {self.name!r}: unknown family {family!r}; known: "
                             f"{', '.join(f.value for f in Family)}") from None
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "options", _options(self.options))
        hooks = ("wire", "feedback_shapes", "init", "trainable", "check_model", "backward", "update_feedback",
                 "output", "objective", "predict", "wire_model", "init_params")
        for hook in hooks:
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise InputError(f"Rule {self.name!r}: {hook} must be a function or None, got {value!r}")
        if self.family is Family.DFA and self.wire is None and self.output is None:
            raise InputError(f"Rule {self.name!r}: a DFA-family rule without its own wire needs an output node")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.name == other
        if not isinstance(other, Rule):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in dataclasses.fields(self))

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options)
        return f"Rule({self.name!r}, family={self.family.value}{', options: ' + opts if opts else ''})"

    # -- what each weighted layer, hidden point and output does (built-in layers and wrapped models alike)
    def op(self, B: jax.Array | None = None) -> LayerOp:
        """The op of a weighted layer whose fixed feedback is ``B`` (None where the rule has none)."""
        return FALinear(B, self.backward) if self.family is Family.FA else linear

    def point(self, h: jax.Array) -> jax.Array:
        """What a hidden point ``h`` passes on: ``stop_gradient(h)`` where the family cuts the graph
        there (DFA: the signal comes from the output node; forward-only rules), else ``h``."""
        return jax.lax.stop_gradient(h) if self.family in _CUT else h

    @property
    def cuts_points(self) -> bool:
        """True when :meth:`point` cuts the graph (DFA family, forward-only rules)."""
        return self.family in _CUT

    @property
    def layerwise(self) -> bool:
        """True when the rule's forward is given by :meth:`op`, :meth:`point` and ``output`` alone,
        so any model that asks for them runs it (a wrapped Flax model): no ``wire`` of its own, or
        exactly its family's (:func:`family_wiring`)."""
        return self.wire is None or _FAMILY_WIRES.get(self.wire) is self.family

    @property
    def feedback_at(self) -> str:
        """Where the feedback's matrices belong: ``"weights"`` (one ``B`` per kernel, shaped like it;
        FA family), ``"points"`` (one per hidden point; DFA family) or ``"list"`` (a plain list)."""
        return {Family.FA: "weights", Family.DFA: "points"}.get(self.family, "list")

    def option(self, name: str) -> Any:
        """The value of option ``name`` (KeyError naming the declared ones)."""
        for k, v in self.options:
            if k == name:
                return v
        raise KeyError(f"rule {self.name!r} has no option {name!r}; its options: {[k for k, _ in self.options]}")

    # -- the forward pass and the update
    def apply_layers(self, layers: Sequence[Layer], params: Sequence[Any], x: jax.Array, feedback: Any,
                     targets: jax.Array | None = None) -> jax.Array:
        """The rule's forward over a layered model's ``layers``: its own ``wire``, or for a
        :attr:`layerwise` rule the family's wiring through :meth:`op`, :meth:`point` and ``output``
        (BP: the plain chain; FA: every layer with ``op(B_l)``; DFA: every layer's input cut, the
        output node on top), as a wrapped model runs it, so ``backward`` and ``output`` act the same
        on both. ``targets`` reach ``wire`` / ``output`` of rules that need them."""
        if not self.layerwise:
            return self.wire(layers, params, x, feedback, **({"targets": targets} if self.needs_targets else {}))
        fbs = [None] * len(params) if feedback is None or self.family is not Family.FA else list(feedback)
        hs, h = [], x
        for layer, p, B in zip(layers, params, fbs):
            h = layer(p, self.point(h), self.op(B))
            hs.append(h)
        if self.family is Family.DFA:
            return self.output(h, hs[:-1], feedback, targets)
        return h

    def train_objective(self, model: Model, params: Any, batch: Batch, feedback: Any,
                        key: jax.Array) -> tuple[jax.Array, Aux]:
        """``(value, Aux)`` whose ``jax.grad`` w.r.t. ``params`` is this rule's update: ``objective``,
        or by default the training loss through ``model.apply(params, x, rule=self)`` (train mode; a
        stochastic model gets ``key``, a stateful one ``batch.stats``, drtp-like rules the targets)."""
        if self.objective is not None:
            return self.objective(model, params, batch, feedback, key)
        kw = {"train": True, "key": key} if contract.is_stochastic(model) else {}
        if batch.stats is not None:
            kw.update(train=True, stats=batch.stats)
        if self.needs_targets:
            kw["targets"] = batch.y
        out = model.apply(params, batch.x, rule=self, feedback=feedback, **kw)
        logits, stats = out if batch.stats is not None else (out, None)
        return batch.loss(logits, batch.y), Aux(logits, stats)

    def infer(self, model: Model, params: Any, x: jax.Array, feedback: Any, stats: Any = None) -> jax.Array:
        """The rule's prediction (logits) on ``x`` in eval mode: ``predict``, or ``model.apply``
        (with the running statistics ``stats`` of a stateful model)."""
        if self.predict is not None:
            return self.predict(model, params, x, feedback)
        if stats is None:
            return model.apply(params, x, rule=self, feedback=feedback)
        return model.apply(params, x, rule=self, feedback=feedback, stats=stats)[0]
