"""``fj.from_flax(module, input_shape)``: any Flax model (linen or NNX) under every rule, unchanged.

The result, a :class:`FlaxModel`, has the model contract (:mod:`fa_jax.models.contract`), so
``fj.sweep``, the rules, the diagnostics, checkpoints and the memory estimate take it as they
take a built-in model. Its ``params`` are the Flax params pytree, untouched; ``jax.grad``
through ``model.apply(params, x, rule=...)`` is the rule's update (:mod:`fa_jax.wrap.wiring`).

Feedback (``fj.init_feedback(key, model, rule)``):

- FA family: the params' nested dict with ``{"kernel": B}`` (``B`` shaped like the kernel) for
  every weighted layer and no entry for biases, e.g. ``fb["Dense_0"]["kernel"]``;
- DFA family: ``{point name: B}``, ``B`` of shape ``(n_out, prod(point shape))``
  (or a shared conv kernel, ``dfa(conv=shared)``); ``model.points`` lists the names and shapes.
  A point's name is the path of the layer whose input it is (``"Dense_1"``: the input of Dense_1,
  the output of the layer before it after its activation) or of a :class:`fa_jax.DFAPoint`;
- other rules with feedback (``Rule.feedback_at == "list"``; pepita, :mod:`fa_jax.rules.pepita`): the
  list the rule draws, e.g. ``[F]``, F (n_out, n_in), as for fj.mlp.

Which of these a rule's feedback is, and what each weighted layer and point does, the rule says
(:class:`fa_jax.Rule`: ``feedback_at``, ``op``, ``point``, ``output``); no rule is named here.

Everything is found by tracing the model once (shapes only) when it is wrapped: the weighted
layers in call order, the points, the state collections; a layer with params that fa_jax
cannot wire is a one-line error then, before anything compiles.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback import check_feedback
from fa_jax.wrap.discover import at as _at
from fa_jax.wrap.discover import check_owners, discover, runs_on, stacked_kernels
from fa_jax.wrap.wiring import Wiring, path_name

if TYPE_CHECKING:
    import flax.linen as nn
    from flax import nnx

    from fa_jax.rules.rule import Rule
    from fa_jax.wrap.linen import LinenAdapter
    from fa_jax.wrap.nnx import NNXAdapter


@dataclasses.dataclass(frozen=True, eq=False)
class FlaxModel:
    """A wrapped Flax model (module doc). Built by :func:`from_flax`; fields are what the trace found.

    calls: ``(path, kind, kernel shape, input shape, output shape)`` per weighted-layer call;
    points: ``(name, shape)`` per DFA point (shape without the output's leading axes);
    token_axes: the output's axes between batch and n_out (``(T,)`` for per-token logits), shared
    by every point: a point's B maps one token's error to that token's activation;
    output_at: ``(name, shape)`` of the :class:`fa_jax.DFAOutput` marker, or None (the logits);
    lifted: the paths of the weighted layers called inside a recurrent cell or a lifted transform
    (``nn.scan``, ``nn.vmap``, ``nn.remat``, ``nn.jit``; no points there, :mod:`fa_jax.wrap.wiring`);
    stacked: ``(path, kernel shape, one call's kernel shape)`` of those whose kernel the transform
    stacks (``nn.scan`` or ``nn.vmap`` over params: each call uses one slice).
    """

    adapter: LinenAdapter | NNXAdapter
    input_shape: tuple
    input_dtype: str
    n_out: int
    calls: tuple
    points: tuple
    markers: bool
    stateful: bool
    stochastic: bool
    token_axes: tuple = ()
    output_at: tuple | None = None  # (DFAOutput path name, feature shape) when the error is taken there
    lifted: tuple = ()
    stacked: tuple = ()

    # -- identity: compiled programs are cached by model, checkpoints fingerprint its repr
    def _key(self):
        return (self.adapter, self.input_shape, self.input_dtype)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FlaxModel) and self._key() == other._key()

    def __repr__(self) -> str:
        desc = re.sub(r" at 0x[0-9a-fA-F]+", "", self.adapter.describe())
        return f"fj.from_flax({desc}, input_shape={self.input_shape}, {self.adapter.kind})"

    # -- the contract's sizes and shapes
    @property
    def n_in(self) -> int:
        return math.prod(self.input_shape)

    @property
    def kernel_paths(self) -> list[tuple]:
        """The weighted layers' param paths, in first-call order (the order of ``weight_shapes``)."""
        out = []
        for path, *_ in self.calls:
            if path not in out:
                out.append(path)
        return out

    @property
    def weight_shapes(self) -> list[tuple]:
        shapes = {path: k for path, _, k, _, _ in self.calls}
        return [shapes[p] for p in self.kernel_paths]

    @property
    def hidden_shapes(self) -> list[tuple]:
        return [s for _, s in self.points]

    @property
    def source_size(self) -> int:
        """The DFA family's error size: ``n_out``, or the ``DFAOutput`` marker's features."""
        return self.n_out if self.output_at is None else math.prod(self.output_at[1])

    @property
    def point_names(self) -> list[str]:
        return [n for n, _ in self.points]

    @property
    def units(self) -> list[int]:
        """Activations per example: every weighted call's output (the memory estimate's count)."""
        return [math.prod(o[1:]) for *_, o in self.calls]

    probes = True  # apply takes probes= (the diagnostics)

    def kernels(self, tree: Any) -> list[Any]:
        """The kernel of every weighted layer of a params-shaped ``tree``, in ``weight_shapes`` order."""
        return [_at(tree, p + ("kernel",)) for p in self.kernel_paths]

    # -- feedback in the params' structure
    def feedback_tree(self, rule: str | Rule, matrices: Sequence[jax.Array]) -> dict[str, Any] | list[jax.Array]:
        """The list ``init_feedback`` draws, as this model's feedback (module doc)."""
        r = rules_lib.get(rule)
        if r.feedback_at == "points":
            return dict(zip(self.point_names, matrices))
        if r.feedback_at == "list":  # e.g. pepita's [F], as for fj.mlp
            return list(matrices)
        tree = {}
        for path, B in zip(self.kernel_paths, matrices):
            node = tree
            for k in path:
                node = node.setdefault(k, {})
            node["kernel"] = B
        return tree

    def feedback_list(self, rule: str | Rule, feedback: Any) -> list[jax.Array]:
        """The feedback's matrices in ``feedback_shapes`` order; a one-line ValueError naming the
        first entry that is missing or extra."""
        r = rules_lib.get(rule)
        if isinstance(feedback, (list, tuple)):
            return list(feedback)
        if r.feedback_at == "list":
            raise InputError(f"rule {r.name!r}: feedback is the list [F] (fj.init_feedback), got "
                             f"{type(feedback).__name__}")
        if not hasattr(feedback, "keys"):
            raise InputError(f"rule {r.name!r}: feedback for a wrapped Flax model is a dict (fj.init_feedback), "
                             f"got {type(feedback).__name__}")
        if r.feedback_at == "points":
            names = self.point_names
            extra = sorted(set(feedback) - set(names))
            for n in names:
                if n not in feedback:
                    raise InputError(f"rule {r.name!r}: feedback has no entry for DFA point {n!r} (points: "
                                     f"{', '.join(names)}; make it with fj.init_feedback)")
            if extra:
                raise InputError(f"rule {r.name!r}: feedback entry {extra[0]!r} is not a DFA point of this "
                                 f"model (points: {', '.join(names)})")
            return [feedback[n] for n in names]
        out = []
        for path in self.kernel_paths:
            try:
                out.append(_at(feedback, path + ("kernel",)))
            except (KeyError, TypeError):
                raise InputError(f"rule {r.name!r}: feedback has no {path_name(path)}/kernel (FA feedback mirrors "
                                 f"the params, a B at every kernel; make it with fj.init_feedback)") from None
        want = {path + ("kernel",) for path in self.kernel_paths}
        for keys, _ in jax.tree_util.tree_flatten_with_path(feedback)[0]:
            path = tuple(getattr(k, "key", getattr(k, "idx", k)) for k in keys)
            if path not in want:
                raise InputError(f"rule {r.name!r}: feedback entry {path_name(path)!r} is not a kernel of this model "
                                 f"(kernels: {', '.join(map(path_name, self.kernel_paths))}); biases take no B")
        return out

    def check_rule(self, rule: Rule) -> None:
        """One-line InputError unless ``rule`` runs on a wrapped model: a rule whose wiring its op, point
        and output node describe (``Rule.layerwise``: bp, the FA and DFA families, objective rules), or
        one that wires models without layers itself (``Rule.wire_model``: pepita)."""
        if rule.output is not None and rule.needs_targets and self.output_at is not None:
            raise InputError(f"rule {rule.name!r} sends the target, not an error, to the DFA points, so it needs the "
                             f"logits as its output node, but this model takes the error at its DFAOutput marker "
                             f"{self.output_at[0]!r}: wrap a version of the module without the DFAOutput marker "
                             f"(language_model('transformer', ...) or TransformerLM: error_at='logits')")
        if rule.feedback_at == "weights" and self.stacked:
            path, full, one = self.stacked[0]
            raise InputError(f"rule {rule.name!r} gives every kernel one feedback matrix B, but layer "
                             f"{path_name(path)} has a kernel {full} stacked by a lifted transform (nn.scan or nn.vmap "
                             f"over params) whose calls each use one {one} slice: use bp or a DFA-family rule, or "
                             f"write the layers out without the transform")
        if rule.layerwise or rule.wire_model is not None:
            return
        raise InputError(f"rule {rule.name!r} does not run on a wrapped Flax model: its own wire(layers, ...) needs "
                         f"fa_jax's layered models (fj.mlp, fj.cnn); use bp, pepita, a rule of the FA or DFA family "
                         f"(fj.rules.fa_rule builds one) or a rule defined by an objective")

    # -- init and apply
    @functools.partial(jax.jit, static_argnums=0)
    def _init(self, key):
        return self.adapter.init(key, jnp.zeros((2, *self.input_shape), self.input_dtype))

    def init(self, key: jax.Array) -> dict[str, Any]:
        """The Flax params pytree, drawn from the ``jax.random`` key (traceable: seeds vmap it)."""
        return self._init(key)[0]

    def init_stats(self) -> dict[str, Any]:
        """The model's state collections (``batch_stats``, ...) as the module's init makes them."""
        return self._init(jax.random.key(0))[1]

    def apply(self, params: Any, x: jax.Array, *, rule: str | Rule = "bp", feedback: Any = None, train: bool = False,
              key: jax.Array | None = None, stats: dict[str, Any] | None = None, targets: jax.Array | None = None,
              probes: Sequence[jax.Array] | None = None) -> jax.Array | tuple[jax.Array, dict[str, Any]]:
        """Logits for inputs ``x`` (batch, *input_shape); ``jax.grad`` through it is ``rule``.

        Args:
            params: the Flax params (from :meth:`init` or the module's own init).
            x: (batch, *input_shape) inputs.
            rule: a :class:`fa_jax.Rule`, or a name or spec from ``fj.RULES`` (default ``"bp"``).
            feedback: the rule's feedback (:func:`fa_jax.init_feedback`; module doc); None for BP.
            train: passed to the module's train flag (dropout on, batch statistics).
            key: dropout's key (``rngs={"dropout": key}``), used with ``train=True``.
            stats: the state collections (:meth:`init_stats`); required when ``stateful``.
            targets: the batch's labels (drtp).
            probes: one array per point (``hidden_shapes`` with the batch axes), added to it (diagnostics).

        Returns:
            The logits; ``(logits, new_stats)`` for a stateful model.
        """
        r = rules_lib.get(rule)
        rules_lib.check_model(r, self)
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) < len(self.input_shape) + 1 or shape[len(shape) - len(self.input_shape):] != self.input_shape:
            raise InputError(f"input has shape {shape}, this model expects (batch, {', '.join(map(str, self.input_shape))})")
        dtype = jnp.result_type(x)
        if jnp.issubdtype(self.input_dtype, jnp.integer) and not jnp.issubdtype(dtype, jnp.integer):
            raise InputError(f"input has dtype {dtype.name}, this model takes integer token ids ({self.input_dtype}; "
                             f"fj.from_flax's input_dtype)")
        if jnp.issubdtype(dtype, jnp.integer) and not jnp.issubdtype(self.input_dtype, jnp.integer):
            x = jnp.asarray(x).astype(self.input_dtype)  # integer numeric features of a real-valued model
        if self.stateful and stats is None:
            raise InputError("this model has state collections (batch norm): pass stats= (make them with "
                             "model.init_stats())")
        if not self.stateful and stats is not None:
            raise InputError("this model has no state collections; stats= is for models with batch norm")
        check_feedback(self, r, feedback)
        fbs = None if feedback is None else self.feedback_list(r, feedback)
        if not r.layerwise:  # the rule wires the model itself (pepita: two passes, fa_jax.rules.pepita)
            return r.wire_model(self, params, x, fbs, rule=r, train=train, key=key if train else None, probes=probes)
        matrices = dict(zip(self.kernel_paths, fbs)) if r.feedback_at == "weights" and fbs is not None else {}
        wiring = Wiring(r, matrices, markers=self.markers, x=x, probes=probes)
        if r.output is not None and self.output_at is not None:
            wiring.output_node = lambda h, hs: r.output(h, hs, fbs, targets)
        y, new = self.adapter.run(params, stats, x, train=train, key=key if train else None, wiring=wiring)
        if r.output is not None:
            names = [n for n, _ in wiring.points]
            if names != self.point_names:
                raise InputError(f"this pass met DFA points {names}, the model was wrapped with {self.point_names}")
            if self.output_at is None:
                y = r.output(y, [h for _, h in wiring.points], fbs, targets)
        return (y, new) if self.stateful else y


def _adapter(module, train_arg):
    import flax.linen as nn
    from flax import nnx

    if isinstance(module, type) and issubclass(module, nn.Module):
        raise InputError(f"from_flax takes a module instance, got the linen class {module.__name__}: "
                         f"write {module.__name__}(...)")
    if isinstance(module, nn.Module):
        from fa_jax.wrap import linen

        name, negated = linen.train_arg(module, train_arg)
        return linen.LinenAdapter(module, name, negated)
    if isinstance(module, nnx.Module) or callable(module):  # or a function rngs -> nnx.Module
        from fa_jax.wrap import nnx as nnx_adapter

        return nnx_adapter.make_adapter(module)
    raise InputError(f"from_flax takes a flax.linen.Module or a flax.nnx.Module (or a function rngs -> "
                     f"nnx.Module), got {type(module).__name__}")


def from_flax(module: nn.Module | nnx.Module | Callable[[nnx.Rngs], nnx.Module], input_shape: Sequence[int], *,
              input_dtype: DTypeLike = "float32", train_arg: str | None = None) -> FlaxModel:
    """Wrap a Flax model so that every rule trains it (module doc).

    Args:
        module: a ``flax.linen.Module``; or a ``flax.nnx.Module`` instance (its params are redrawn
            per seed with each layer type's default initializers, :mod:`fa_jax.wrap.nnx`), or a
            function ``rngs -> nnx.Module`` (called once per seed, so its own initializers apply).
        input_shape: one example's shape, e.g. ``(28, 28, 1)`` (NHWC images) or ``(784,)``.
        input_dtype: of the inputs (default float32; ``"int32"`` for token ids); ``apply`` and
            ``fj.sweep`` refuse inputs of the other kind (integer vs real).
        train_arg: the name of the module's train flag (linen ``__call__`` keyword: ``train``,
            ``training``, ``is_training``, or ``deterministic``, which is negated); default: found
            by name in the signature; none means the module has no train mode (a warning names a
            boolean argument of ``__call__`` that may be the flag under another name).

    Returns:
        A :class:`FlaxModel`. One-line ValueErrors for a layer fa_jax cannot wire (naming its
        path and what is supported), a bad shape, or output that is not (batch, ..., n_out).
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or not shape or not all(map(checks.is_positive_int, shape)):
        raise InputError(f"input_shape must be a tuple of positive ints (one example's shape), got {input_shape!r}")
    try:
        dtype = jnp.dtype(input_dtype).name
    except TypeError:
        raise InputError(f"input_dtype must be a dtype name such as 'float32' or 'int32', got {input_dtype!r}") from None
    adapter = _adapter(module, train_arg)
    x = jax.ShapeDtypeStruct((2, *shape), jnp.dtype(dtype))
    with runs_on(shape, dtype):  # linen fails in init, NNX (whose init takes no input) in the first run
        params, state = jax.eval_shape(adapter.init, jax.random.key(0), x)
        wiring = discover(adapter, params, state, x, markers=False)
    markers = bool(wiring.found_markers)  # the second pass, through the markers, records no found_markers
    if markers:
        wiring = discover(adapter, params, state, x, markers=True)
    check_owners(adapter, params, wiring)
    out = wiring.out_shape
    if len(out) < 2:
        raise InputError(f"the module returns shape {out}; fa_jax trains models whose output is logits "
                         f"(batch, ..., n_out)")
    lead = len(out) - 1
    output_at = None
    if wiring.output_at is not None:
        o_name, _, o_shape = wiring.output_at  # no point follows it (Wiring.marker, Wiring.weighted)
        if tuple(o_shape[:lead]) != tuple(out[:lead]):
            raise InputError(f"the DFAOutput marker {o_name} has shape {o_shape}, which does not share the output's "
                             f"leading axes {tuple(out[:lead])}")
        output_at = (o_name, tuple(o_shape[lead:]))
    points = []
    for name, h in wiring.points:
        if tuple(h.shape[:lead]) != tuple(out[:lead]):
            raise InputError(f"DFA point {name!r} has shape {tuple(h.shape)}, which does not share the output's "
                             f"leading axes {tuple(out[:lead])}: place DFAPoint markers on per-example activations")
        points.append((name, tuple(h.shape[lead:])))
    return FlaxModel(adapter=adapter, input_shape=shape, input_dtype=dtype, n_out=int(out[-1]),
                     calls=tuple(wiring.calls), points=tuple(points), markers=markers,
                     stateful=bool(state), stochastic=getattr(adapter, "train_name", None) is not None,
                     token_axes=tuple(out[1:lead]), output_at=output_at, lifted=tuple(wiring.lifted),
                     stacked=stacked_kernels(params, wiring))
