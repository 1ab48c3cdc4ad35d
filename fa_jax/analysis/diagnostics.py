"""What a learning rule does to the gradient: alignment angles and norms, per layer.

All angles are in degrees, ``angle(a, b) = arccos(<a, b> / (|a| |b|))`` of the flattened
arrays (0° parallel, 90° orthogonal, 180° opposite; below 90° the update still descends).
With ``W_l`` of shape (fan_in, fan_out), L layers and H = L - 1 hidden layers:

- ``grad_alignment_deg`` (L,): ``angle(dW_l^rule, dW_l^bp)``, the rule's gradient of the
  loss w.r.t. ``W_l`` (before the optimizer) against the true BP gradient at the same
  params and batch. BP gives 0°. Biases are left out, as in the DFA literature.
- ``signal_alignment_deg`` (H,): the error signal arriving at hidden activation ``h_l``
  under the rule (DFA: ``e @ B_l``; FA: ``delta_{l+1} @ B_{l+1}.T``; pepita:
  ``(h_l - h_l^mod) / N``, which its output node sends to ``h_l``) against the true
  backpropagated ``dL/dh_l``; one angle per example, averaged over the batch.
- ``weight_alignment_deg`` (H,): FA family (``Rule.family == "fa"``) — ``angle(W_{l+1}, B_{l+1})``,
  the forward matrix against the backward matrix that carries the signal to ``h_l``, the one
  the rule uses at these params (usf/frsf/brsf: the sign-derived ``B``; kp, wm: the evolving
  one); DFA family (``"dfa"``: dfa, sdfa, drtp) —
  ``angle(B_l, (W_{l+1} W_{l+2} ... W_L).T)``, the feedback against the product of the
  forward weights above ``h_l`` (shape (n_out, h_l)) (Nøkland 2016; Refinetti et al. 2021),
  for dense nets with dense feedback. ``None`` for rules without feedback, conv nets and
  weight-shared conv feedback (``dfa(conv=shared)``: no product of forward weights to compare).
- ``grad_norm`` (L,): ``|dW_l^rule|_F``; ``weight_norm`` (L,): ``|W_l|_F``.

For a rule defined by an objective (:class:`fa_jax.Rule` ``objective``), ``dW^rule`` is the
objective's gradient (its update) on the same batch; it sends no signal to the hidden activations,
so there is no ``signal_alignment_deg``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from fa_jax.models import contract
from fa_jax.rules import core as rules_lib
from fa_jax.rules.rule import Batch, Family

if TYPE_CHECKING:
    from fa_jax.data.task import Task
    from fa_jax.losses import Loss
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule
    from fa_jax.training.state import TrainState
    from fa_jax.training.step import Diagnose

KEYS = ("grad_alignment_deg", "signal_alignment_deg", "weight_alignment_deg", "grad_norm", "weight_norm")


def angle_deg(a: ArrayLike, b: ArrayLike, axis: int | None = None) -> jax.Array:
    """Angle in degrees between a and b, flattened (``axis=None``) or along ``axis``.

    a, b: arrays of one shape. Returns a scalar (or a over the remaining axes). A zero
    vector has no direction: its angle is NaN.
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    if axis is None:
        a, b, axis = a.reshape(-1), b.reshape(-1), 0
    dot = jnp.sum(a * b, axis=axis)
    norms = jnp.linalg.norm(a, axis=axis) * jnp.linalg.norm(b, axis=axis)
    cos = jnp.where(norms > 0, dot / jnp.where(norms > 0, norms, 1), jnp.nan)
    return jnp.degrees(jnp.arccos(jnp.clip(cos, -1.0, 1.0)))


def weight_alignment(rule: str | Rule, params: Any, feedback: Any, model: Model | None = None) -> jax.Array | None:
    """(H,) angles between feedback and the forward weights it stands for (module doc), or None.

    params: the model's params (one dict per layer with ``"w"`` (fan_in, fan_out) for fa_jax's own
    models; any params tree with ``model`` given: its kernels are ``model.kernels(params)``).
    feedback: the rule's state in the model's structure; FA family — what
    :func:`fa_jax.rules.used_matrices` turns into L matrices shaped like ``W_l``; DFA family —
    H matrices (n_out, h_l).
    """
    r = rules_lib.get(rule)
    ws = contract.kernels(model, params)  # model None: [p["w"] for p in params]
    feedback = contract.unpack_feedback(model, r, feedback)
    if r.family is Family.FA:
        used = rules_lib.used_matrices(r, ws, feedback)
        return jnp.stack([angle_deg(w, B) for w, B in zip(ws[1:], used[1:])])
    if r.family is Family.DFA:
        if any(w.ndim != 2 for w in ws) or any(B.ndim != 2 for B in feedback) or len(feedback) != len(ws) - 1:
            return None  # the product of forward weights: dense chains and dense feedback only
        out, prod = [], ws[-1]
        for l in range(len(ws) - 2, -1, -1):  # h_l is the output of layer l (0-based); above it: ws[l+1:]
            if prod.shape[0] != feedback[l].shape[1]:
                return None  # not a chain
            out.append(angle_deg(feedback[l], prod.T))
            prod = ws[l] @ prod
        return jnp.stack(out[::-1])
    return None


def rule_gradients(model: Model, rule: str | Rule, loss_fn: Loss, params: Any, feedback: Any, x: jax.Array,
                   y: jax.Array) -> tuple[Any, list[jax.Array]]:
    """Gradients of the loss under ``rule`` w.r.t. params and every hidden activation.

    Zero perturbations ``eps_l`` (batch, h_l) are added to each hidden activation; their
    gradient is the signal the rule delivers to ``h_l``.

    Args:
        model: a layered model (:mod:`fa_jax.models.contract`: ``layers``, ``hidden_shapes``), or
            one whose ``apply`` takes ``probes=`` (``model.probes``; a wrapped Flax model).
        rule: a name from ``fj.RULES``; its wiring is differentiated.
        loss_fn: ``loss(logits, labels) -> scalar`` (:mod:`fa_jax.losses`).
        params: the model's params, one dict per layer.
        feedback: the rule's fixed feedback (:func:`fa_jax.init_feedback`), or None for BP.
        x: (batch, n_in) inputs (or (batch, *input_shape) for a conv net).
        y: (batch,) labels.

    Returns:
        ``(param_grads, signals)``: param_grads shaped like ``params``; signals a list of H
        arrays (batch, h_l), the gradient w.r.t. each hidden activation.
    """
    r = rules_lib.get(rule)
    extra = {"targets": y} if r.needs_targets else {}
    if getattr(model, "probes", False):  # the model adds the probes itself (a wrapped Flax model)
        def objective(params: Any, eps: list[jax.Array]) -> jax.Array:
            return loss_fn(model.apply(params, x, rule=r, feedback=feedback, probes=eps, **extra), y)
    else:
        layers = contract.layers(model, "the diagnostics")

        def objective(params: Any, eps: list[jax.Array]) -> jax.Array:
            wrapped = [(lambda p, h, lin, layer=layer, e=e: layer(p, h, lin) + e) for layer, e in zip(layers, eps)]
            wrapped += layers[len(eps):]
            return loss_fn(r.apply_layers(wrapped, params, x, feedback, y), y)

    in_shape = contract.input_shape(model)
    batch = x.shape[: x.ndim - len(in_shape)] + contract.token_axes(model)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
    eps = [jnp.zeros(batch + s, dtype) for s in contract.hidden_shapes(model, "the diagnostics")]
    return jax.grad(objective, argnums=(0, 1))(params, eps)


def diagnose(model: Model, rule: str | Rule, loss_fn: Loss, params: Any, feedback: Any, x: jax.Array,
             y: jax.Array, key: jax.Array | None = None) -> dict[str, jax.Array]:
    """All metrics of the module doc at ``params`` on the batch ``(x, y)``; a dict of arrays.

    Two gradient evaluations: the rule's and BP's (``rule="bp"``) on the same batch.

    Args:
        model, rule, loss_fn, params, feedback: as for :func:`rule_gradients`.
        x: (batch, n_in) inputs; y: (batch,) labels.
        key: the key an objective rule's objective gets (default ``key(0)``; wirings ignore it).

    Returns:
        {name: array} with the :data:`KEYS` of the module doc; ``signal_alignment_deg`` only
        when the model has hidden layers and the rule is a wiring, ``weight_alignment_deg`` only for the FA and (dense) DFA families.
    """
    r = rules_lib.get(rule)
    if r.objective is None:
        g_rule, s_rule = rule_gradients(model, r, loss_fn, params, feedback, x, y)
    else:  # the update is the objective's gradient; it sends no signal to the hidden activations
        batch = Batch(x, y, loss_fn)
        key = jax.random.key(0) if key is None else key
        g_rule, s_rule = jax.grad(lambda p: r.train_objective(model, p, batch, feedback, key)[0])(params), []
    g_bp, s_bp = rule_gradients(model, "bp", loss_fn, params, None, x, y)
    k_rule, k_bp, k = (contract.kernels(model, t) for t in (g_rule, g_bp, params))
    out = {
        "grad_alignment_deg": jnp.stack([angle_deg(a, b) for a, b in zip(k_rule, k_bp)]),
        "grad_norm": jnp.stack([jnp.linalg.norm(g) for g in k_rule]),
        "weight_norm": jnp.stack([jnp.linalg.norm(w) for w in k]),
    }
    if s_rule:
        out["signal_alignment_deg"] = jnp.stack(
            [jnp.nanmean(angle_deg(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1), axis=1))
             for a, b in zip(s_rule, s_bp)])
    wa = weight_alignment(rule, params, feedback, model)
    if wa is not None:
        out["weight_alignment_deg"] = wa
    return out


def make_diagnose(model: Model, rule: str | Rule, loss_fn: Loss, batch_size: int, purpose: int = 3) -> Diagnose:
    """``diag(state, task) -> dict`` on one extra training batch, for the training scan.

    The batch key is ``fold_in(state.key, purpose)``: the training key stream (and so the
    training run) is unchanged whether diagnostics are on or off.

    Args:
        model, rule, loss_fn: as for :func:`rule_gradients`.
        batch_size: examples in the extra batch (``task.sample(key, batch_size)``).
        purpose: the int folded into ``state.key`` for that batch (default 3, apart from the
            ``PURPOSE_*`` of :mod:`fa_jax.training.state`).

    Returns:
        ``diag(state, task)``: :func:`diagnose` at ``state.params`` and ``state.feedback``.
    """

    def diag(state: TrainState, task: Task) -> dict[str, jax.Array]:
        k = jax.random.fold_in(state.key, purpose)
        x, y = task.sample(k, batch_size)
        return diagnose(model, rule, loss_fn, state.params, state.feedback, x, y, jax.random.fold_in(k, 1))

    return diag
