"""Learning rules as wirings of the forward pass: ``jax.grad`` through them *is* the rule.

A rule is one function ``wire(layers, params, x, feedback) -> y`` plus one :class:`Rule`
entry in :data:`RULES`. ``layers[l](p, h, op)`` computes layer l from its params ``p`` and
input ``h``, doing its weighted map through the *op* the rule hands it (:class:`LayerOp`):
``op(h, w, b)`` for a dense layer, ``op.apply(fn, h, w, b)`` for any other map ``fn(h, w)``
linear in ``w`` (a convolution, a transposed convolution). The rule decides which op each
layer uses and how activations are connected. Conventions, with ``W_l`` of shape
(fan_in, fan_out), ``h_l = f(h_{l-1} W_l + b_l)`` and ``e = dL/dy``:

- ``bp``:  the plain chain; ``jax.grad`` is backpropagation.
- ``fa``:  every layer is :func:`fa_linear`; its input receives ``delta @ B_l.T`` instead of
  ``delta @ W_l.T`` (Lillicrap et al. 2016). ``B_l`` has the shape of ``W_l``; ``B = W`` is BP.
- ``dfa``: hidden layers see their input through ``stop_gradient``; one node,
  :func:`dfa_output`, ties the output ``y`` to every hidden activation and sends
  ``e @ B_l`` to ``h_l`` (Nøkland 2016, eq. 3). ``B_l`` has shape (n_out, h_l). The
  output layer gets its true gradient ``h_L^T e``.

How a new FA-family rule (sign symmetry, Kolen-Pollack, weight mirror, ...) plugs in: it only
decides which backward matrix ``B`` each weighted layer uses, and :class:`FALinear` carries it
to dense layers (:func:`fa_linear`) and to conv / transposed-conv layers (:func:`fa_apply`)
alike. ``Rule(name, fa_family(backward), feedback_shapes)``, with ``backward(w, B) -> B_used``
given the layer's weight and its fixed feedback (``None`` when the rule has no
``feedback_shapes``), e.g. ``lambda w, B: jnp.sign(w)`` (uSF, Liao et al. 2016) or
``lambda w, B: jnp.abs(B) * jnp.sign(w)`` (frSF), works on every layer type at once. A rule
whose backward is not ``delta @ B.T`` writes its own op: any object with ``__call__(h, w, b)``
and ``apply(fn, h, w, b)`` (:class:`LayerOp`). :func:`fa_rule` builds such an entry and marks it
``family="fa"`` so that the diagnostics measure ``angle(W_l, B_used)`` for it.

Rules whose feedback evolves (Kolen-Pollack, weight mirror, batchwise redraws) give their
:class:`Rule` an ``update_feedback(params, feedback, updates, key) -> (params, feedback)`` hook:
:func:`fa_jax.make_train_step` calls it after the optimizer (instead of
``optax.apply_updates``) inside the compiled step, and a diverged seed's feedback is frozen with
the rest of its state. Rules with options are registered as factories (:func:`register_factory`)
and named by specs such as ``"kp(lam=0.99)"`` or ``"wm(eta=0.1; d=0.1)"`` (``;`` or ``,``
between options; ``;`` where the spec sits in a comma-separated ``--rules`` list); the spec
is the rule's name everywhere (``model.apply(rule=...)``, ``fj.sweep``, config and checkpoint).
"""

import ast
import dataclasses
import functools
import inspect
import math
import re
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from fa_jax import registry
from fa_jax.models import contract
from fa_jax.rules.conv_feedback import conv_signal
from fa_jax.registry import lookup
from fa_jax.errors import InputError


@runtime_checkable
class LayerOp(Protocol):
    """What a rule hands each weighted layer: how to run its map so that ``jax.grad`` is the rule."""

    def __call__(self, h, w, b):
        """Dense: ``h @ w + b``.  h: (..., fan_in), w: (fan_in, fan_out), b: (fan_out,)."""

    def apply(self, fn, h, w, b):
        """Any map linear in w (``fn(h, w)``: a conv, a transposed conv), plus the bias b (features,)."""


class Linear:
    """BP's op (:data:`linear`): the plain maps, ``h @ w + b`` and ``fn(h, w) + b``."""

    def __call__(self, h, w, b):
        return h @ w + b

    def apply(self, fn, h, w, b):
        return fn(h, w) + b

    def __repr__(self):
        return "fa_jax.rules.linear"


linear = Linear()  # the op of bp and dfa (and of the lazy baselines' layers)


@jax.custom_vjp
def fa_linear(h, w, b, B):
    """h @ w + b whose backward sends ``g @ B.T`` to ``h`` (FA); w and b get their true gradients.

    h: (..., fan_in), w and B: (fan_in, fan_out), b: (fan_out,). B receives a zero cotangent.
    """
    return h @ w + b


def _fa_fwd(h, w, b, B):
    return h @ w + b, (h, B)


def _fa_bwd(res, g):
    h, B = res
    h2 = h.reshape(-1, h.shape[-1])
    g2 = g.reshape(-1, g.shape[-1])
    return g @ B.T, h2.T @ g2, g2.sum(0), jnp.zeros_like(B)


fa_linear.defvjp(_fa_fwd, _fa_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def fa_apply(fn, h, w, B):
    """``fn(h, w)`` (bilinear: a conv or transposed conv) whose backward sends ``vjp_h fn(., B)``
    to ``h`` (FA), the true gradient to ``w`` and a zero cotangent to ``B`` (shaped like ``w``)."""
    return fn(h, w)


def _fa_apply_fwd(fn, h, w, B):
    return fn(h, w), (h, w, B)


def _fa_apply_bwd(fn, res, g):
    h, w, B = res
    dh = jax.vjp(lambda h_: fn(h_, B), h)[1](g)[0]
    dw = jax.vjp(lambda w_: fn(h, w_), w)[1](g)[0]
    return dh, dw, jnp.zeros_like(B)


fa_apply.defvjp(_fa_apply_fwd, _fa_apply_bwd)


class FALinear:
    """The FA-family op: forward as BP's, backward sends ``delta`` through ``B`` instead of ``w``.

    Dense: ``op(h, w, b)`` is :func:`fa_linear`; other maps: ``op.apply(fn, h, w, b)`` is
    :func:`fa_apply` plus the bias. ``B``: the layer's fixed feedback (shaped like ``w``), or
    None; ``backward(w, B) -> B_used`` (optional) derives the matrix used from the layer's
    weight (no gradient flows through it); without it the matrix is ``B`` itself (FA).
    """

    def __init__(self, B, backward: Callable | None = None):
        self.B = B
        self.backward = backward

    def matrix(self, w):
        """The backward matrix of a layer with weight ``w`` (same shape as ``w``)."""
        if self.backward is None:
            if self.B is None:
                raise InputError("FALinear needs a feedback matrix B or a backward(w, B) function")
            return self.B
        return jax.lax.stop_gradient(self.backward(w, self.B))

    def __call__(self, h, w, b):
        return fa_linear(h, w, b, self.matrix(w))

    def apply(self, fn, h, w, b):
        return fa_apply(fn, h, w, self.matrix(w)) + b


@jax.custom_vjp
def dfa_output(y, hs, Bs):
    """Identity on ``y`` whose backward sends ``e @ B_l`` to each hidden activation ``hs[l]``.

    y: (..., n_out); hs[l]: (..., *feature_shape_l); Bs[l]: (n_out, prod(feature_shape_l)) (or a
    shared conv kernel, :func:`direct_signals`). Dense feedback is one matmul with ``[B_1 | ... | B_L]``.
    """
    return y


def _dfa_fwd(y, hs, Bs):
    return y, (hs, Bs)


def direct_signals(source, hs, Bs):
    """``source @ B_l`` for each hidden activation ``hs[l]``, as one matmul with ``[B_1 | ... | B_L]``.

    source: (..., n_out) (DFA: the error e); Bs[l]: (n_out, prod(feature_shape_l)), or a shared
    conv kernel (k, k, n_out, C) for an ``hs[l]`` of shape (..., H, W, C), which receives
    ``conv(tile(source), B_l)`` (:func:`fa_jax.rules.conv_feedback.conv_signal`). Returns one
    array shaped like each ``hs[l]``. The DFA family's output nodes share it.
    """
    if not Bs:
        return []
    out = [None if B.ndim == 2 else conv_signal(source, B, h) for B, h in zip(Bs, hs)]
    dense = [i for i, B in enumerate(Bs) if B.ndim == 2]
    if not dense:
        return out
    Bd = [Bs[i] for i in dense]
    batch = source.shape[:-1]
    signal = source.reshape(-1, source.shape[-1]) @ jnp.concatenate(Bd, axis=1)
    splits = []
    offset = 0
    for B in Bd[:-1]:
        offset += B.shape[1]
        splits.append(offset)
    parts = jnp.split(signal, splits, axis=1)
    for i, p in zip(dense, parts):
        out[i] = p.reshape(batch + hs[i].shape[len(batch):]).astype(hs[i].dtype)
    return out


def _dfa_bwd(res, e):
    hs, Bs = res
    return e, direct_signals(e, hs, Bs), [jnp.zeros_like(B) for B in Bs]


dfa_output.defvjp(_dfa_fwd, _dfa_bwd)


def bp(layers, params, x, feedback):
    del feedback
    h = x
    for layer, p in zip(layers, params):
        h = layer(p, h, linear)
    return h


def fa_family(backward: Callable | None = None):
    """The wiring of an FA-family rule: layer l runs with ``FALinear(feedback[l], backward)``
    (module doc). ``backward=None`` is FA itself; with no feedback, every B passed is None."""

    def wire(layers, params, x, feedback):
        fbs = [None] * len(params) if feedback is None else feedback
        h = x
        for layer, p, B in zip(layers, params, fbs):
            h = layer(p, h, FALinear(B, backward))
        return h

    wire.backward = backward  # what a model that is not a list of layers reads (fj.from_flax)
    return wire


def fa(layers, params, x, feedback):
    """Feedback alignment: every layer's op is ``FALinear(B_l)``."""
    return fa_family()(layers, params, x, feedback)


def direct_chain(layers, params, x):
    """``(hs, y)``: the DFA family's forward pass, every layer fed its input through ``stop_gradient``
    (so no gradient flows between layers); hs: the hidden activations, y: the output."""
    hs, h = [], x
    for layer, p in zip(layers[:-1], params[:-1]):
        h = layer(p, jax.lax.stop_gradient(h), linear)
        hs.append(h)
    return hs, layers[-1](params[-1], jax.lax.stop_gradient(h), linear)


def dfa_node(y, hs, feedback, targets=None):
    """DFA's output node: :func:`dfa_output` (``targets`` unused)."""
    del targets
    return dfa_output(y, hs, list(feedback))


def dfa(layers, params, x, feedback):
    hs, y = direct_chain(layers, params, x)
    return dfa_node(y, hs, feedback)


def _fa_shapes(model):
    return contract.weight_shapes(model, "FA-family feedback")


def _dfa_shapes(model):
    n = contract.source_size(model)
    return [(n, math.prod(s)) for s in contract.hidden_shapes(model, "DFA-family feedback")]


@dataclasses.dataclass(frozen=True)
class Rule:
    """A learning rule: its wiring and the shapes of the feedback it needs.

    ``feedback_shapes(model)`` reads the model's ``weight_shapes`` (one per layer),
    ``hidden_shapes`` (feature shape of each hidden activation) and ``n_out`` (the model
    contract, :mod:`fa_jax.models.contract`), and returns one shape per feedback matrix;
    ``None`` means the rule needs no feedback.
    """

    name: str
    wire: Callable
    feedback_shapes: Callable | None = None
    doc: str = ""
    # Optional hooks for rules with frozen (non-trainable) arrays, e.g. the lazy baselines
    # (fa_jax.rules.lazy): ``init(key, model, params, dtype) -> pytree`` draws them (they travel as
    # ``feedback``); ``trainable(params) -> params`` replaces frozen layers' entries by ``{}``
    # (no gradient, no optimizer state); ``check_model(model)`` raises a one-line ValueError
    # for models the rule cannot wire.
    init: Callable | None = None
    trainable: Callable | None = None
    check_model: Callable | None = None
    # ``family``: "fa" (every weighted layer runs FALinear(B, backward); ``backward`` as for
    # fa_family), "dfa" (hidden activations get a direct signal; feedback (n_out, h_l)) or
    # "forward" (no backward pass: pepita, fa_jax.rules.pepita); the diagnostics read it.
    # ``update_feedback(params, feedback, updates, key) -> (params, feedback)``: the
    # evolving-feedback hook (module doc); params are those before the step, updates the
    # optimizer's, key a fresh key of the step; without it the step keeps
    # (optax.apply_updates(params, updates), feedback). ``needs_targets``: ``wire`` takes
    # ``targets=`` (the batch labels) as well, passed by ``model.apply(..., targets=)``.
    # ``output(y, hs, feedback, targets) -> y``: a DFA-family rule's output node, which ties y to
    # the hidden activations hs (the wiring of a model that is not a list of layers uses it).
    family: str | None = None
    backward: Callable | None = None
    update_feedback: Callable | None = None
    needs_targets: bool = False
    output: Callable | None = None


def fa_rule(name: str, backward: Callable | None, doc: str, *, feedback: bool = True, **kw) -> Rule:
    """An FA-family :class:`Rule`: ``fa_family(backward)`` wiring, one ``B`` shaped like each ``W_l``
    (``feedback=False``: none, ``backward(w, None)`` derives it), ``family="fa"``; ``kw`` other hooks."""
    return Rule(name, fa_family(backward), _fa_shapes if feedback else None, doc, family="fa", backward=backward,
                **kw)


def used_matrices(rule: Rule, kernels: list, feedback: list | None) -> list:
    """The backward matrix each layer of an FA-family ``rule`` uses (``FALinear.matrix``), given the
    layers' kernels and their feedback (lists in layer order; feedback None for usf)."""
    fbs = [None] * len(kernels) if feedback is None else feedback
    return [FALinear(B, rule.backward).matrix(w) for w, B in zip(kernels, fbs)]


RULES: dict[str, Rule] = {
    "bp": Rule("bp", bp, None, "backpropagation"),
    "fa": Rule("fa", fa, _fa_shapes, "feedback alignment: B_l shaped like W_l", family="fa"),
    "dfa": Rule("dfa", dfa, _dfa_shapes, "direct feedback alignment: B_l of shape (n_out, h_l)", family="dfa",
                output=dfa_node),
}
# name -> factory(**options) -> Rule, for the rules with options (module doc); the plain name is
# also in RULES (the defaults).
FACTORIES: dict[str, Callable] = {}
_SPEC = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*\((.*)\)\s*$", re.S)


def _option_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string option


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"kp(lam=0.99)"`` -> ``("kp", {"lam": 0.99})``; a plain name -> ``(name, {})``."""
    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        return spec, {}
    opts = {}
    for item in filter(None, (t.strip() for t in re.split(r"[;,]", m.group(2)))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise InputError(f"rule {spec!r}: options are written key=value, got {item!r}")
        opts[key.strip()] = _option_value(value.strip())
    return m.group(1), opts


@functools.lru_cache(maxsize=256)
def _from_spec(spec: str) -> Rule:
    base, opts = parse_spec(spec)
    if base not in FACTORIES:
        if base in RULES:
            raise InputError(f"rule {base!r} takes no options (got {spec!r}); rules with options: "
                             f"{', '.join(sorted(FACTORIES)) or 'none'}")
        return lookup(RULES, base, "rule")
    known = list(inspect.signature(FACTORIES[base]).parameters)
    for k in opts:
        if k not in known:
            raise InputError(f"rule {base!r} has no option {k!r}; its options: {', '.join(known)}")
    return dataclasses.replace(FACTORIES[base](**opts), name=spec)


def get(name: str) -> Rule:
    """Rule by name or spec (``"kp(lam=0.99)"``, module doc); unknown names list the known ones."""
    if isinstance(name, str) and name in RULES:
        return RULES[name]
    if isinstance(name, str) and "(" in name:
        return _from_spec(name)
    return lookup(RULES, name, "rule")


def register_factory(name: str, factory: Callable, *, replace: bool = False) -> Callable:
    """``factory(**options) -> Rule`` for specs ``"name(k=v; ...)"``; registers ``factory()`` (the
    defaults) as ``name`` in :data:`RULES` too. Bad options are the factory's one-line errors."""
    registry.add(FACTORIES, name, factory, what="rule factory", replace=replace)
    register(dataclasses.replace(factory(), name=name), replace=replace)
    _from_spec.cache_clear()
    return factory


def register(rule: Rule, *, replace: bool = False) -> Rule:
    """Add ``rule`` to :data:`RULES` under ``rule.name`` and return it (a new rule is one wiring
    plus this call); a name already registered is refused unless ``replace=True``."""
    if not isinstance(rule, Rule):
        raise InputError(f"register takes a fa_jax.Rule (name, wiring, feedback shapes), got {rule!r}")
    return registry.add(RULES, rule.name, rule, what="rule", replace=replace)


def check_model(rule, model) -> None:
    """One-line ValueError if ``rule`` (a name or :class:`Rule`) cannot wire ``model``: the rule's
    own check, and the model members its feedback shapes read (:mod:`fa_jax.models.contract`)."""
    r = get(rule) if isinstance(rule, str) else rule
    own = getattr(model, "check_rule", None)
    if own is not None:
        own(r)
    if r.check_model is not None:
        r.check_model(model)
    if r.feedback_shapes is not None:
        r.feedback_shapes(model)
