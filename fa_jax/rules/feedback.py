"""Fixed random feedback matrices: ``init_feedback(key, model, rule, ...)`` and their checks.

Feedback is an ordinary, non-trainable pytree (a list of arrays) passed to
``model.apply(..., feedback=)``: never a closure constant, never an optimizer parameter.

Shapes (the conventions of :mod:`fa_jax.rules.core`): FA — one ``B_l`` per layer, shaped like
``W_l`` (fan_in, fan_out); DFA — one ``B_l`` per hidden layer, shape (n_out, h_l) (with
``conv=shared``, a kernel (k, k, n_out, C) per (H, W, C) activation: :mod:`fa_jax.rules.conv_feedback`).
BP needs none (``None``).

Distribution (a documented choice; DFA is sensitive to it and peers disagree):
``dist`` is ``"uniform"`` (U(-a, a), a = sqrt(3) std) or ``"normal"`` (N(0, std^2)), and
``std = scale / sqrt(m)`` where ``scaling`` picks m for a B of shape (rows, cols):

- ``"fan_in"`` (default): m = rows. FA: the forward fan-in of ``W_l`` (B is then drawn
  like a LeCun init of W). DFA: m = n_out, the ``1/sqrt(n_out)`` of the DFA literature.
- ``"fan_out"``: m = cols (DFA: the hidden width h_l, as Nøkland's code).
- ``"fan_avg"``: m = (rows + cols) / 2 (Glorot-like).
- ``"n_out"``: m = the network's output size for every B.
- ``"none"``: m = 1 (std = scale).

Named presets (``scheme=``, :data:`SCHEMES`; replace ``dist``/``scaling``, ``scale`` still
multiplies) reproduce how other codebases draw feedback; see :mod:`fa_jax.rules.feedback_schemes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.models.init import fans
from fa_jax.registry import lookup
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback_schemes import SCHEMES

if TYPE_CHECKING:
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule

DISTS = ("uniform", "normal")
# fans(): (rows, cols) for a matrix; for a conv kernel (kh, kw, c_in, c_out) the receptive
# field times c_in / c_out, as the weight initializers count them.
SCALINGS = {
    "fan_in": lambda shape, n_out: fans(shape)[0],
    "fan_out": lambda shape, n_out: fans(shape)[1],
    "fan_avg": lambda shape, n_out: sum(fans(shape)) / 2,
    "n_out": lambda shape, n_out: n_out,
    "none": lambda shape, n_out: 1,
}


def feedback_std(shape: Sequence[int], n_out: int, scaling: str = "fan_in", scale: float = 1.0) -> float:
    """Standard deviation of the entries of a feedback matrix of ``shape`` (see module doc)."""
    return scale / math.sqrt(lookup(SCALINGS, scaling, "feedback scaling")(shape, n_out))


def check_feedback_options(dist: str = "uniform", scaling: str = "fan_in", scale: float = 1.0,
                           scheme: str | None = None) -> None:
    """Validate the feedback options without drawing anything."""
    if scheme is not None:
        lookup(SCHEMES, scheme, "feedback scheme")
        if (dist, scaling) != ("uniform", "fan_in"):
            raise InputError(f"feedback scheme {scheme!r} sets the distribution itself; "
                             f"leave dist/scaling at their defaults (got dist={dist!r}, scaling={scaling!r})")
    checks.choice("feedback dist", dist, DISTS)
    lookup(SCALINGS, scaling, "feedback scaling")
    checks.positive_number("feedback scale", scale)


def init_feedback(key: jax.Array, model: Model, rule: str | Rule, *, dist: str = "uniform", scaling: str = "fan_in",
                  scale: float = 1.0, dtype: DTypeLike = jnp.float32, scheme: str | None = None,
                  params: Any = None) -> Any:
    """Draw the feedback ``rule`` needs for ``model``; ``None`` for rules without feedback.

    Rules with an ``init`` hook (the lazy baselines, :mod:`fa_jax.rules.lazy`) draw their frozen
    arrays with it instead.

    Args:
        key: a ``jax.random`` key (split per matrix).
        model: the model the feedback is for (its ``weight_shapes`` / ``hidden_shapes``, ``n_out``).
        rule: a rule name from ``fj.RULES`` or a :class:`fa_jax.rules.core.Rule`.
        dist: ``"uniform"`` (default) or ``"normal"`` (module doc).
        scaling: picks m in ``std = scale / sqrt(m)`` (module doc; default ``"fan_in"``).
        scale: multiplies the std (and a scheme's matrices); a positive number (default 1).
        dtype: of the arrays (default float32).
        scheme: ``None`` (use dist/scaling/scale) or a preset name from :data:`SCHEMES`
            (dense layers only; dist/scaling then stay at their defaults).
        params: the model's initial params, for ``init`` hooks that copy them.

    Returns:
        A list of arrays (see module doc; for a model with ``feedback_tree``, e.g. a wrapped Flax
        model, that model's structure), what the ``init`` hook returns, or None.
    """
    r = rules_lib.get(rule) if isinstance(rule, str) else rule
    check_feedback_options(dist, scaling, scale, scheme)
    if r.init is not None:
        out = r.init(key, model, params, dtype)
        return contract.pack_feedback(model, r, out) if isinstance(out, list) else out
    if r.feedback_shapes is None:
        return None
    shapes = r.feedback_shapes(model)
    if scheme is not None:
        if any(len(s) != 2 for s in shapes):
            raise InputError(f"feedback scheme {scheme!r} is defined for dense layers; this model has conv "
                             f"feedback shapes {[tuple(s) for s in shapes if len(s) != 2][:1]}: use dist/scaling/scale")
        drawn = SCHEMES[scheme](key, model, r.name, [tuple(s) for s in shapes], dtype)
        return contract.pack_feedback(model, r, [scale * B for B in drawn])
    keys = jax.random.split(key, max(len(shapes), 1))
    out = []
    for k, shape in zip(keys, shapes):
        std = feedback_std(shape, model.n_out, scaling, scale)
        if dist == "uniform":
            a = math.sqrt(3.0) * std
            out.append(jax.random.uniform(k, shape, dtype, minval=-a, maxval=a))
        else:
            out.append(std * jax.random.normal(k, shape, dtype))
    return contract.pack_feedback(model, r, out)


def check_feedback(model: Model, rule: str | Rule, feedback: Any) -> None:
    """Raise a one-line ValueError unless ``feedback`` has the structure and shapes ``rule`` needs."""
    r = rules_lib.get(rule) if isinstance(rule, str) else rule
    if r.feedback_shapes is None:
        return
    want = [tuple(s) for s in r.feedback_shapes(model)]
    if feedback is None:
        raise InputError(f"rule {r.name!r} needs feedback: {len(want)} matrices of shapes {want} "
                         f"(make it with fj.init_feedback(key, model, {r.name!r}))")
    feedback = contract.unpack_feedback(model, r, feedback)
    if not isinstance(feedback, (list, tuple)) or len(feedback) != len(want):
        n = len(feedback) if isinstance(feedback, (list, tuple)) else type(feedback).__name__
        raise InputError(f"rule {r.name!r} needs a list of {len(want)} feedback matrices, got {n}")
    for i, (B, s) in enumerate(zip(feedback, want)):
        got = tuple(getattr(B, "shape", ()))
        if got != s:
            raise InputError(f"rule {r.name!r}: feedback[{i}] has shape {got}, expected {s}")
