"""bp, fa and dfa, the FA family's builder, and the registry of rules by name or spec.

A rule is a :class:`fa_jax.Rule` (:mod:`fa_jax.rules.rule`: every hook typed, with its default)
registered in :data:`RULES`. ``layers[l](p, h, op)`` computes layer l from its params ``p`` and
input ``h``, doing its weighted map through the *op* the rule hands it (:class:`LayerOp`,
:mod:`fa_jax.rules.ops`). Conventions, with ``W_l`` of shape (fan_in, fan_out),
``h_l = f(h_{l-1} W_l + b_l)`` and ``e = dL/dy``:

- ``bp``:  the plain chain; ``jax.grad`` is backpropagation.
- ``fa``:  every layer is :func:`fa_linear`; its input receives ``delta @ B_l.T`` instead of
  ``delta @ W_l.T`` (Lillicrap et al. 2016). ``B_l`` has the shape of ``W_l``; ``B = W`` is BP.
- ``dfa``: hidden layers see their input through ``stop_gradient``; one node,
  :func:`dfa_output`, ties the output ``y`` to every hidden activation and sends
  ``e @ B_l`` to ``h_l`` (Nøkland 2016, eq. 3). ``B_l`` has shape (n_out, h_l). The
  output layer gets its true gradient ``h_L^T e``.

A new FA-family rule (sign symmetry, Kolen-Pollack, weight mirror, ...) only decides which
backward matrix ``B`` each weighted layer uses: ``fa_rule(name, backward, doc)``, with
``backward(w, B) -> B_used`` given the layer's weight and its fixed feedback (``None`` when the
rule has no feedback), e.g. ``lambda w, B: jnp.sign(w)`` (uSF, Liao et al. 2016), works on every
layer type and on wrapped Flax models at once (:class:`FALinear`). A DFA-family rule gives its
output node (``output``). A rule whose update is not a wiring gives an ``objective``
(:mod:`fa_jax.rules.rule`; ``docs/writing_a_rule.md``).

Rules with options are registered as factories (:func:`register_factory`) and named by specs such
as ``"kp(lam=0.99)"`` or ``"wm(eta=0.1; d=0.1)"`` (``;`` or ``,`` between options; a comma-separated
``--rules`` list cuts only at commas outside parentheses: :func:`split_specs`). Every spelling of
one rule has one normal form (:func:`normalize`: ``kp()`` and ``kp(lam=0.999)`` are ``kp``,
``wm(eta=0.1, d=0.1)`` is ``wm(d=0.1;eta=0.1)``), the rule's name everywhere (lists, config.json,
checkpoints); its resolved options (the factory's defaults filled in) are the rule's declared
``options``. :func:`get` resolves a spec once; everything after it passes the :class:`Rule` object on.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax

from fa_jax import registry
from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.registry import lookup
from fa_jax.rules.ops import (  # noqa: F401
    FALinear,
    LayerOp,
    Linear,
    dfa_output,
    direct_signals,
    fa_apply,
    fa_layer,
    fa_linear,
    linear,
)
from fa_jax.rules.rule import Aux, Batch, Family, Rule, family_wiring, surrogate  # noqa: F401

if TYPE_CHECKING:
    from fa_jax.models.contract import Model
    from fa_jax.rules.ops import Backward
    from fa_jax.rules.rule import Layer, Wire


@family_wiring(Family.BP)
def bp(layers: Sequence[Layer], params: Sequence[Any], x: jax.Array, feedback: Any) -> jax.Array:
    """Backpropagation: the plain chain, every layer with BP's op (:meth:`Rule.apply_layers`)."""
    return RULES["bp"].apply_layers(layers, params, x, None)


def fa_family(backward: Backward | None = None) -> Wire:
    """The wiring of an FA-family rule: layer l runs with ``FALinear(feedback[l], backward)``
    (module doc). ``backward=None`` is FA itself; with no feedback, every B passed is None.
    (A rule built by :func:`fa_rule` needs no wire: its family's wiring is this one.)"""
    rule = Rule("fa_family", None, family=Family.FA, backward=backward)

    def wire(layers: Sequence[Layer], params: Sequence[Any], x: jax.Array, feedback: Any) -> jax.Array:
        return rule.apply_layers(layers, params, x, feedback)

    return wire


@family_wiring(Family.FA)
def fa(layers: Sequence[Layer], params: Sequence[Any], x: jax.Array, feedback: Any) -> jax.Array:
    """Feedback alignment: every layer's op is ``FALinear(B_l)`` (:meth:`Rule.apply_layers`)."""
    return RULES["fa"].apply_layers(layers, params, x, feedback)


def dfa_node(y: jax.Array, hs: Sequence[jax.Array], feedback: Sequence[jax.Array],
             targets: jax.Array | None = None) -> jax.Array:
    """DFA's output node: :func:`dfa_output` (``targets`` unused)."""
    del targets
    return dfa_output(y, hs, list(feedback))


@family_wiring(Family.DFA)
def dfa(layers: Sequence[Layer], params: Sequence[Any], x: jax.Array, feedback: Sequence[jax.Array]) -> jax.Array:
    """Direct feedback alignment: every layer's input cut, :func:`dfa_node` on top (:meth:`Rule.apply_layers`)."""
    return RULES["dfa"].apply_layers(layers, params, x, feedback)


def _fa_shapes(model):
    return contract.weight_shapes(model, "FA-family feedback")


def _dfa_shapes(model):
    n = contract.source_size(model)
    return [(n, math.prod(s)) for s in contract.hidden_shapes(model, "DFA-family feedback")]


def fa_rule(name: str, backward: Backward | None, doc: str, *, feedback: bool = True, **kw: Any) -> Rule:
    """An FA-family :class:`Rule`: every weighted layer runs ``FALinear(B_l, backward)``, one ``B``
    shaped like each ``W_l`` (``feedback=False``: none, ``backward(w, None)`` derives it); ``kw``
    other hooks."""
    return Rule(name, None, _fa_shapes if feedback else None, doc, family=Family.FA, backward=backward, **kw)


def used_matrices(rule: Rule, kernels: Sequence[jax.Array], feedback: Sequence[jax.Array] | None) -> list[jax.Array]:
    """The backward matrix each layer of an FA-family ``rule`` uses (``FALinear.matrix``), given the
    layers' kernels and their feedback (lists in layer order; feedback None for usf)."""
    fbs = [None] * len(kernels) if feedback is None else feedback
    return [rule.op(B).matrix(w) for w, B in zip(kernels, fbs)]


RULES: dict[str, Rule] = {
    "bp": Rule("bp", bp, None, "backpropagation"),
    "fa": Rule("fa", fa, _fa_shapes, "feedback alignment: B_l shaped like W_l", family=Family.FA),
    "dfa": Rule("dfa", dfa, _dfa_shapes, "direct feedback alignment: B_l of shape (n_out, h_l)",
                family=Family.DFA, output=dfa_node),
}
# name -> factory(**options) -> Rule, for the rules with options (module doc); the plain name is
# also in RULES (the defaults).
FACTORIES: dict[str, Callable] = {}
_SPEC = re.compile(r"^([A-Za-z_][\w-]*)\s*\((.*)\)$", re.DOTALL)
_BARE = re.compile(r"[A-Za-z_]\w*")  # a string option written without quotes
_CLOSE = {"(": ")", "[": "]", "{": "}"}


def split_specs(text: str, seps: str = ",", what: str = "rule list") -> list[str]:
    """``text`` cut at the characters of ``seps`` that stand outside brackets and quotes:
    ``"bp,wm(eta=0.1,d=0.1)"`` -> ``["bp", "wm(eta=0.1,d=0.1)"]`` (items as written, unstripped).
    One-line InputError (naming ``what``) for unbalanced brackets or an unclosed quote."""
    parts, stack, quote, start, i = [], [], None, 0, 0
    while i < len(text):
        c = text[i]
        if quote:
            i += c == "\\"  # an escaped character inside quotes
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in _CLOSE:
            stack.append(_CLOSE[c])
        elif c in ")]}" and (not stack or stack.pop() != c):
            raise InputError(f"{what} {text!r}: unbalanced parentheses (a {c!r} that closes nothing)")
        elif c in seps and not stack:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quote:
        raise InputError(f"{what} {text!r}: unclosed quote {quote}")
    if stack:
        raise InputError(f"{what} {text!r}: unbalanced parentheses ({len(stack)} not closed)")
    return [*parts, text[start:]]


def _option_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text  # a bare word: a string option


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"kp(lam=0.99)"`` -> ``("kp", {"lam": 0.99})``; a plain name -> ``(name, {})`` (stripped).

    Options are ``key=value`` separated by ``;`` or ``,`` (outside brackets and quotes); a value
    is a Python literal, else the string as written (``b0=w``). One-line InputError for unbalanced
    parentheses, an option not written ``key=value`` or given twice."""
    if not isinstance(spec, str):
        return spec, {}
    text = spec.strip()
    split_specs(text, "", "rule")
    if not any(c in text for c in "()"):
        return text, {}
    m = _SPEC.match(text)
    try:
        items = split_specs(m.group(2), ";,") if m else None
    except InputError:  # the first ( closes before the end: kp(a=1)(b=2)
        items = None
    if items is None:
        raise InputError(f"rule {spec!r}: a spec is name(key=value; ...), e.g. 'kp(lam=0.99)'")
    opts = {}
    for item in filter(None, (t.strip() for t in items)):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise InputError(f"rule {spec!r}: options are written key=value, got {item!r}")
        if key in opts:
            raise InputError(f"rule {spec!r}: option {key!r} is given twice")
        opts[key] = _option_value(value.strip())
    return m.group(1), opts


def _spell(value: Any) -> str:
    """An option value as the normal form writes it: a bare word unquoted, else its repr."""
    if isinstance(value, str) and _BARE.fullmatch(value) and _option_value(value) == value:
        return value
    return repr(value)


def _canonical(base: str, key: str, value: Any, default: Any) -> Any:
    """``value`` checked (a number, string, bool or None; finite) and, for a float option, an int made float."""
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise InputError(f"rule {base!r}: option {key}={value!r} is not a number, string, bool or None")
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(default, float):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"rule {base!r}: option {key}={value!r} is not a finite number")
    return value


def _normal(spec: str) -> str:
    """The normal form of ``spec`` (:func:`normalize`) from its text and the factory's signature."""
    base, opts = parse_spec(spec)
    if base not in FACTORIES:
        if base in RULES and opts:
            raise InputError(f"rule {base!r} takes no options (got {spec!r}); rules with options: "
                             f"{', '.join(sorted(FACTORIES)) or 'none'}")
        lookup(RULES, base, "rule")  # an unknown name: the known ones listed
        return base
    params = inspect.signature(FACTORIES[base]).parameters
    for k in opts:
        if k not in params:
            raise InputError(f"rule {base!r} has no option {k!r}; its options: {', '.join(params)}")
    items = []
    for k in sorted(opts):
        default = params[k].default
        v = _canonical(base, k, opts[k], default)
        if not (type(v) is type(default) and v == default):
            items.append(f"{k}={_spell(v)}")
    return f"{base}({';'.join(items)})" if items else base


def normalize(spec: str | Rule) -> str:
    """The normal form of a rule name or spec: the name of the rule :func:`get` resolves.

    One rule has one normal form: the plain name when no option is given (``kp``, ``kp()``,
    ``kp ()``), options that equal the factory's default dropped (``kp(lam=0.999)`` is ``kp``),
    the others sorted by key and ``;``-separated, each value spelled as the repr of its literal
    (``0.90``, ``.9`` and ``9e-1`` are ``0.9``; an int for a float option is that float: ``1`` is
    ``1.0``) and bare-word strings unquoted (``b0='w'`` is ``b0=w``): ``"wm(eta=1e-1, d=0.1)"`` ->
    ``"wm(d=0.1;eta=0.1)"``. A :class:`Rule` gives its name. One-line InputError for a spec that
    names no rule (:func:`get`)."""
    return get(spec).name


def _build(factory: Callable, name: str, opts: dict) -> Rule:
    """``factory(**opts)`` named ``name``, its declared options the factory's defaults updated by ``opts``."""
    params = inspect.signature(factory).parameters
    for k in opts:
        if k not in params:
            raise InputError(f"rule {name.split('(')[0]!r} has no option {k!r}; its options: {', '.join(params)}")
    resolved = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    resolved.update(opts)
    return dataclasses.replace(factory(**opts), name=name, options=tuple(resolved.items()))


@functools.lru_cache(maxsize=256)
def _from_spec(normal: str) -> Rule:
    """The rule of a normal form with options (:func:`_normal`), built once."""
    base, opts = parse_spec(normal)
    return _build(FACTORIES[base], normal, opts)


def get(name: str | Rule) -> Rule:
    """The :class:`Rule` for a name or spec (``"kp(lam=0.99)"``, module doc), resolved once per
    normal form (:func:`normalize`: every spelling of one rule gives the same object, named by its
    normal form); a :class:`Rule` is returned as it is. Unknown names list the known ones."""
    if isinstance(name, Rule):
        return name
    if isinstance(name, str) and name in RULES:
        return RULES[name]
    if not isinstance(name, str):
        return lookup(RULES, name, "rule")
    normal = _normal(name)
    return RULES[normal] if normal in RULES else _from_spec(normal)


def register_factory(name: str, factory: Callable[..., Rule], *, replace: bool = False) -> Callable[..., Rule]:
    """``factory(**options) -> Rule`` for specs ``"name(k=v; ...)"``; registers ``factory()`` (the
    defaults) as ``name`` in :data:`RULES` too. Bad options are the factory's one-line errors."""
    registry.add(FACTORIES, name, factory, what="rule factory", replace=replace)
    register(_build(factory, name, {}), replace=replace)
    _from_spec.cache_clear()
    return factory


def register(rule: Rule, *, replace: bool = False) -> Rule:
    """Add ``rule`` to :data:`RULES` under ``rule.name`` and return it (a new rule is one
    :class:`Rule` plus this call); a name already registered is refused unless ``replace=True``."""
    if not isinstance(rule, Rule):
        raise InputError(f"register takes a fa_jax.Rule (name, wiring, feedback shapes), got {rule!r}")
    return registry.add(RULES, rule.name, rule, what="rule", replace=replace)


def check_model(rule: str | Rule, model: Model) -> None:
    """One-line InputError if ``rule`` (a name or :class:`Rule`) cannot run on ``model``: the model's
    own check, the rule's, and the model members its feedback shapes read (:mod:`fa_jax.models.contract`)."""
    r = get(rule)
    own = getattr(model, "check_rule", None)
    if own is not None:
        own(r)
    if r.check_model is not None:
        r.check_model(model)
    if r.feedback_shapes is not None:
        r.feedback_shapes(model)
