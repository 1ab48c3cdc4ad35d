"""Local error signals (Nøkland & Eidnes 2019): every hidden block learns from a loss of its own.

``local(loss="predsim", beta=0.99)`` (specs ``"local(loss=pred)"``, ``"local(beta=0.5;loss=predsim)"``;
plain ``"local"`` = the defaults). The model's own forward pass runs with every block's input
detached (``stop_gradient``), so no gradient crosses a block boundary: hidden block l (every layer
but the last) takes the gradient of its local loss ``L_l(h_l)`` of its output ``h_l`` (B, ...), the
last layer the gradient of the task loss ``batch.loss(logits, y)``. With the labels' one-hot class
targets ``T`` (N, K) (:func:`fa_jax.rules.layered.classes`; one logit: the 2 classes of ``y > 0``):

- ``pred``: ``L = batch.loss(pool(h_l) V_l + c_l, y)``, the task's own loss (cross-entropy for
  classes, as in the paper; bce for a binary task) of a local linear head ``(V_l, c_l)``;
  ``pool`` averages a conv block's spatial axes, (B, H, W, C) -> (B, C); a dense block's (B, n) as is;
- ``sim``: ``L = mean_ij (S(flat(h_l)) - S(T))_ij^2`` over the N x N entries, with ``S(X) = U U^T``,
  ``U_i = c_i / sqrt(|c_i|^2 + eps)``, ``c_i = X_i - mean(X_i)`` (each row centred over its
  features: the paper's adjusted cosine similarity), ``eps = 1e-8`` (keeps a constant row, e.g. a
  dead ReLU layer, finite: its U_i = 0);
- ``predsim``: ``(1 - beta) pred + beta sim``. ``beta`` weighs predsim's sim part only: a
  non-default beta with pred or sim is refused.

sim and predsim need class labels: integer classes, or ±1 (0/1) labels of one logit. Real-valued
labels shaped like the logits (regression targets) are refused with a one-line error when the
objective is first traced (a rule sees no task before); a one-output regression cannot be told from
a binary task and is read as classes ``y > 0``. pred uses the task's own loss and takes any labels.

The objective's value is the task loss (the logged training loss); its gradient is that of
``task + sum_l L_l`` (:func:`local_objective`). ``Aux.metrics``: ``local_loss`` (the mean of ``L_l`` over
hidden blocks; 0 without one), and the unweighted means ``local_pred`` / ``local_sim`` of the parts used.
A model without a hidden block (``fj.mlp([4, 3])``) is accepted: its one layer learns as under BP.

Heads (``pred``, ``predsim``): ``params[l]["head"] = {"w": (C_l, n_out), "b": (n_out,)}`` for each
hidden block l, zeros as in the authors' code (their ``decoder_y.weight.data.zero_()``; the bias,
torch's default there, is zero here too), so a block's first pred gradient is 0 until its head has
learned. The optimizer trains them like any param; the model's layers do not read them. Params
without them (``model.init`` alone) are a one-line error: draw them with the rule's ``init_params``.

Follows the authors' ``train.py`` (github.com/anokland/local-loss, ``LocalLossBlockLinear``,
``LocalLossBlockConv``, ``similarity_matrix``) with these simplifications:

- sim runs on the block's output itself: no learned map before ``S`` (the authors' ``linear_loss``, a
  bias-free n x n linear layer, or ``conv_loss``, a 3x3 conv; their ``--bio`` variant drops it too),
  and a conv block's output is flattened (the authors reduce it to per-channel spatial std when it
  has more than 3 channels);
- ``S``'s eps sits inside the square root, ``c / sqrt(|c|^2 + eps)``; the authors add it outside,
  ``c / (1e-8 + sqrt(|c|^2))`` (relative difference ~1e-8 / (2 |c|^2): negligible unless a row's
  norm is ~1e-3 or less; a constant row gives U_i = 0 either way);
- pred pools a conv block globally (to C features); the authors pool only until the head's input
  has at most ``dim_in_decoder`` (4096) features, i.e. not at all for small nets;
- the local losses see the block's output as the model computes it in training, after its dropout
  (the authors' see it before); ``S`` is not clamped to [-1, 1] (it only guards rounding);
- the model's own init is kept (the authors also zero the output layer's weights);
- one optimizer for all params (the authors: one per block; the same for Adam or SGD, which act per param).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.rules.core import normalize, register_factory
from fa_jax.rules.layered import block_pass, classes, model_check, per_example_loss
from fa_jax.rules.rule import Aux, Batch, Family, Objective, Rule

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

LOSSES = ("pred", "sim", "predsim")
BETA = 0.99  # beta's default, local's and fg's
EPS = 1e-8  # added to |c_i|^2 in the cosine similarity's denominator
HEAD = "head"  # params[l][HEAD]: hidden block l's local head
sg = jax.lax.stop_gradient


class LocalLoss(NamedTuple):
    """A hidden block's local loss (module doc): ``loss`` one of :data:`LOSSES`, ``beta`` predsim's
    sim weight, ``spec`` the rule that uses it (its normal form names it in errors)."""

    loss: str
    beta: float
    spec: str

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts computed: ``("pred",)``, ``("sim",)`` or ``("pred", "sim")``."""
        return ("pred", "sim") if self.loss == "predsim" else (self.loss,)

    def mix(self, parts: dict) -> jax.Array:
        """``L_l`` from its parts ``{"pred": ..., "sim": ...}``: predsim's ``(1 - beta) pred + beta sim``."""
        if self.loss == "predsim":
            return (1 - self.beta) * parts["pred"] + self.beta * parts["sim"]
        return parts[self.loss]


def check_beta(rule: str, beta: float, option: str, value: str) -> None:
    """One-line InputError for a non-default ``beta`` where it has no effect (``option`` not predsim)."""
    if value != "predsim" and beta != BETA:
        raise InputError(f"{rule}: beta weighs {option}=predsim's sim part; got beta={beta!r} with {option}={value}")


def pool(h: jax.Array, batch_axes: int = 1) -> jax.Array:
    """``(*batch, C)``: a block output's spatial axes (those between the batch and feature axes) averaged."""
    return h.mean(axis=tuple(range(batch_axes, h.ndim - 1))) if h.ndim > batch_axes + 1 else h


def targets(local: LocalLoss, logits: jax.Array, y: jax.Array) -> jax.Array:
    """``(*batch, max(K, 2))`` one-hot class targets of labels ``y`` for logits ``(*batch, K)``
    (:func:`fa_jax.rules.layered.classes`)."""
    k = logits.shape[-1]
    return jax.nn.one_hot(classes(y, k, logits.ndim - 1, normalize(local.spec)), max(k, 2), dtype=logits.dtype)


def unit_rows(x: jax.Array) -> jax.Array:
    """``U`` (N, D): the rows of ``x`` (N, D) centred over their features, ``c_i / sqrt(|c_i|^2 + eps)``."""
    c = x - x.mean(axis=1, keepdims=True)
    return c / jnp.sqrt(jnp.sum(c * c, axis=1, keepdims=True) + EPS)


def similarity(x: jax.Array) -> jax.Array:
    """``S(x) = U U^T`` (N, N) of rows ``x`` (N, D): the cosine similarity of the rows centred over their features."""
    u = unit_rows(x)
    return u @ u.T


def sim_loss(h: jax.Array, t: jax.Array, batch_axes: int = 1) -> jax.Array:
    """``mean((S(h) - S(t))^2)``: h a block output (*batch, ...) flattened per example, t the targets (*batch, K)."""
    n = math.prod(h.shape[:batch_axes])
    s_y = sg(similarity(t.reshape(n, -1)))
    return jnp.mean((similarity(h.reshape(n, -1)) - s_y) ** 2)


def head(p: dict, layer: int, rule: str) -> dict:
    """Block ``layer``'s local head ``params[layer]["head"]``; a one-line InputError for params without it."""
    if HEAD not in p:
        raise InputError(f"rule {normalize(rule)!r} reads block {layer}'s local head at params[{layer}][{HEAD!r}], "
                         f"which these params lack (keys: {', '.join(sorted(p))}): add the heads with the rule's "
                         f"init_params (fj.init_state does)")
    return p[HEAD]


def head_logits(hd: dict, h: jax.Array, batch_axes: int = 1) -> jax.Array:
    """A local head's logits ``pool(h) V + c`` (*batch, n_out)."""
    return pool(h, batch_axes) @ hd["w"] + hd["b"]


def init_heads(key: jax.Array, model: Model, params: Any, rule: str = "local") -> Any:
    """``params`` (a new list) with a zero head ``{"w": (C_l, n_out), "b": (n_out,)}`` at ``params[l]["head"]``
    for every hidden block l (C_l: the block output's last axis, channels or units); ``rule`` the
    spec that errors name."""
    del key
    shapes = contract.hidden_shapes(model, f"rule {normalize(rule)!r} (its local pred heads)")
    out = [dict(p) for p in params]
    for p, s in zip(out, shapes):
        dtype = p["w"].dtype
        p[HEAD] = {"w": jnp.zeros((s[-1], model.n_out), dtype), "b": jnp.zeros((model.n_out,), dtype)}
    return out


def sim_per_example(h: jax.Array, t: jax.Array) -> jax.Array:
    """(B,) sim terms ``2 s_i - sg(s_i)``, ``s_i = mean_j (U_i . sg(U_j) - S(t)_ij)^2``, of a block
    output h (B, ...) and targets t (B, K): their mean is :func:`sim_loss`, their derivative w.r.t.
    ``h_i`` B times its (``S_ij`` depends on ``h_i`` through row i and column i alike)."""
    b = h.shape[0]
    u = unit_rows(h.reshape(b, -1))
    s = jnp.mean((u @ sg(u).T - sg(similarity(t.reshape(b, -1)))) ** 2, axis=1)
    return 2 * s - sg(s)


def local_losses(local: LocalLoss, params: Any, hs: list, logits: jax.Array, batch: Batch,
                 per_example: bool = False) -> dict:
    """``{"local": [L_l], "pred": [...], "sim": [...]}`` for the hidden outputs ``hs`` (module doc);
    ``per_example``: each a (B,) row whose mean is the loss and whose derivative w.r.t. example i's
    ``h_l,i`` is B times the loss's (pred: :func:`fa_jax.rules.layered.per_example_loss`; sim:
    :func:`sim_per_example`)."""
    nb = logits.ndim - 1
    out = {"local": [], "pred": [], "sim": []}
    t = targets(local, logits, batch.y) if "sim" in local.parts else None
    for i, (p, h) in enumerate(zip(params, hs)):
        parts = {}
        if "pred" in local.parts:
            z = head_logits(head(p, i, local.spec), h, nb)
            parts["pred"] = per_example_loss(batch.loss, z, batch.y) if per_example else batch.loss(z, batch.y)
        if "sim" in local.parts:
            parts["sim"] = sim_per_example(h, t) if per_example else sim_loss(h, t, nb)
        for k, v in parts.items():
            out[k].append(v)
        out["local"].append(local.mix(parts))
    return out


def local_total(local: LocalLoss, params: Any, hs: list, logits: jax.Array, batch: Batch,
                dtype: Any) -> tuple[jax.Array, dict]:
    """``(sum_l L_l, metrics)`` (module doc): ``local_loss`` and ``local_pred`` / ``local_sim``, the
    means over the hidden blocks (0 without one) of the parts used, detached."""
    parts = local_losses(local, params, hs, logits, batch)
    zero = jnp.zeros((), dtype)
    names = {"local": "local_loss", "pred": "local_pred", "sim": "local_sim"}
    metrics = {names[k]: sg(sum(parts[k], zero) / max(len(hs), 1)) for k in ("local", *local.parts)}
    return sum(parts["local"], zero), metrics


def local_objective(local: LocalLoss) -> Objective:
    """The objective ``(model, params, batch, feedback, key) -> (task loss, Aux)`` whose gradient is
    that of ``task + sum_l L_l`` (every block's input detached, module doc)."""

    def objective(model, params, batch, feedback, key):
        del feedback
        logits, stats, _, hs = block_pass(model, params, batch, key, detach=True)
        task = batch.loss(logits, batch.y)
        total, metrics = local_total(local, params, hs, logits, batch, task.dtype)
        return task + (total - sg(total)), Aux(logits, stats, metrics)

    return objective


def local(loss: str = "predsim", beta: float = BETA) -> Rule:
    """The local-loss :class:`fa_jax.Rule`: ``loss`` one of pred, sim, predsim; ``beta`` in [0, 1] weighs
    predsim's sim part (module doc; refused unless default with pred or sim)."""
    checks.choice("local option loss", loss, LOSSES)
    checks.number_in("local: beta", beta, 0, 1, hi_open=False)
    check_beta("local", beta, "loss", loss)
    spec = f"local(beta={beta!r};loss={loss})"
    heads = loss != "sim"
    doc = f"local losses ({loss}), every block's input detached (Nøkland & Eidnes 2019)"
    return Rule("local", doc=doc, family=Family.LOCAL, objective=local_objective(LocalLoss(loss, float(beta), spec)),
                check_model=model_check(spec, heads=heads),
                init_params=functools.partial(init_heads, rule=spec) if heads else None)


register_factory("local", local)
