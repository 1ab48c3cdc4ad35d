"""Local error signals (Nøkland & Eidnes 2019): every hidden block learns from a loss of its own.

``local(loss="predsim", beta=0.99)`` (specs ``"local(loss=pred)"``, ``"local(beta=0.5;loss=predsim)"``;
plain ``"local"`` = the defaults). The model's own forward pass runs with every block's input
detached (``stop_gradient``), so no gradient crosses a block boundary: hidden block l (every layer
but the last) takes the gradient of its local loss ``L_l(h_l)`` of its output ``h_l`` (B, ...), the
last layer the gradient of the task loss ``batch.loss(logits, y)``. With labels' targets ``T`` (N, K)
(one-hot; ±1 binary labels as 2-class one-hot; one-hot or real-valued labels as given):

- ``pred``: ``L = batch.loss(pool(h_l) V_l + c_l, y)``, the task's own loss (cross-entropy for
  classes, as in the paper; bce for a binary task) of a local linear head ``(V_l, c_l)``;
  ``pool`` averages a conv block's spatial axes, (B, H, W, C) -> (B, C); a dense block's (B, n) as is;
- ``sim``: ``L = mean_ij (S(flat(h_l)) - S(T))_ij^2`` over the N x N entries, with ``S(X) = U U^T``,
  ``U_i = c_i / sqrt(|c_i|^2 + eps)``, ``c_i = X_i - mean(X_i)`` (each row centred over its
  features: the paper's adjusted cosine similarity), ``eps = 1e-8`` (keeps a constant row, e.g. a
  dead ReLU layer, finite: its U_i = 0);
- ``predsim``: ``(1 - beta) pred + beta sim``.

The objective's value is the task loss (the logged training loss); its gradient is that of
``task + sum_l L_l`` (:func:`local_objective`). ``Aux.metrics``: ``local_loss`` (the mean of ``L_l`` over
hidden blocks; 0 without one), and the unweighted means ``local_pred`` / ``local_sim`` of the parts used.
A model without a hidden block (``fj.mlp([4, 3])``) is accepted: its one layer learns as under BP.

Heads (``pred``, ``predsim``): ``params[l]["head"] = {"w": (C_l, n_out), "b": (n_out,)}`` for each
hidden block l, zeros as in the authors' code (their ``decoder_y.weight.data.zero_()``; the bias,
torch's default there, is zero here too), so a block's first pred gradient is 0 until its head has
learned. The optimizer trains them like any param; the model's layers do not read them.

Follows the authors' ``train.py`` (github.com/anokland/local-loss, ``LocalLossBlockLinear``,
``LocalLossBlockConv``, ``similarity_matrix``) with these simplifications:

- sim runs on the block's output itself: no learned map before ``S`` (the authors' ``linear_loss``, a
  bias-free n x n linear layer, or ``conv_loss``, a 3x3 conv; their ``--bio`` variant drops it too),
  and a conv block's output is flattened (the authors reduce it to per-channel spatial std when it
  has more than 3 channels);
- pred pools a conv block globally (to C features); the authors pool only until the head's input
  has at most ``dim_in_decoder`` (4096) features, i.e. not at all for small nets;
- the local losses see the block's output as the model computes it in training, after its dropout
  (the authors' see it before); ``S`` is not clamped to [-1, 1] (it only guards rounding);
- the model's own init is kept (the authors also zero the output layer's weights);
- one optimizer for all params (the authors: one per block; the same for Adam or SGD, which act per param).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.models import contract
from fa_jax.rules.core import register_factory
from fa_jax.rules.layered import batch_forward, check_layered
from fa_jax.rules.ops import linear
from fa_jax.rules.rule import Aux, Batch, Family, Rule

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

LOSSES = ("pred", "sim", "predsim")
EPS = 1e-8  # added to |c_i|^2 in the cosine similarity's denominator


def pool(h: jax.Array, batch_axes: int = 1) -> jax.Array:
    """``(*batch, C)``: a block output's spatial axes (those between the batch and feature axes) averaged."""
    return h.mean(axis=tuple(range(batch_axes, h.ndim - 1))) if h.ndim > batch_axes + 1 else h


def label_targets(logits: jax.Array, y: jax.Array) -> jax.Array:
    """``(*batch, K)`` float targets of labels ``y``: one-hot of integer classes, ``[y < 0, y > 0]`` for
    ±1 labels with one logit, labels shaped like ``logits`` (one-hot or real) as given."""
    if y.ndim == logits.ndim:
        return y.astype(logits.dtype)
    k = logits.shape[-1]
    classes = (y > 0).astype(jnp.int32) if k == 1 else y.astype(jnp.int32)
    return jax.nn.one_hot(classes, max(k, 2), dtype=logits.dtype)


def similarity(x: jax.Array) -> jax.Array:
    """``S(x)`` (N, N) of rows ``x`` (N, D): the cosine similarity of the rows centred over their features."""
    c = x - x.mean(axis=1, keepdims=True)
    u = c / jnp.sqrt(jnp.sum(c * c, axis=1, keepdims=True) + EPS)
    return u @ u.T


def sim_loss(h: jax.Array, t: jax.Array, batch_axes: int = 1) -> jax.Array:
    """``mean((S(h) - S(t))^2)``: h a block output (*batch, ...) flattened per example, t the targets (*batch, K)."""
    n = math.prod(h.shape[:batch_axes])
    s_y = jax.lax.stop_gradient(similarity(t.reshape(n, -1)))
    return jnp.mean((similarity(h.reshape(n, -1)) - s_y) ** 2)


def head_logits(head: dict, h: jax.Array, batch_axes: int = 1) -> jax.Array:
    """A local head's logits ``pool(h) V + c`` (*batch, n_out)."""
    return pool(h, batch_axes) @ head["w"] + head["b"]


def init_heads(key: jax.Array, model: Model, params: Any) -> Any:
    """``params`` (a new list) with a zero head ``{"w": (C_l, n_out), "b": (n_out,)}`` at ``params[l]["head"]``
    for every hidden block l (C_l: the block output's last axis, channels or units)."""
    del key
    shapes = contract.hidden_shapes(model, "rule 'local' (its pred heads)")
    out = [dict(p) for p in params]
    for p, s in zip(out, shapes):
        dtype = p["w"].dtype
        p["head"] = {"w": jnp.zeros((s[-1], model.n_out), dtype), "b": jnp.zeros((model.n_out,), dtype)}
    return out


def model_check(heads: bool):
    """``check_model``: one-line InputError unless the model is layered (fj.mlp, fj.norm_mlp, the conv
    nets) and, for ``heads``, has ``hidden_shapes`` (the heads' sizes)."""

    def check(model: Model) -> None:
        check_layered(model, "local")
        if heads:
            contract.hidden_shapes(model, "rule 'local' (its pred heads)")

    return check


def detached_wire(layers: list, params: list, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """The chain with every block's input detached: ``(logits, [h_1, ..., h_L])`` (the hidden outputs)."""
    hs, h = [], x
    for layer, p in zip(layers, params):
        h = layer(p, jax.lax.stop_gradient(h), linear)
        hs.append(h)
    return h, hs[:-1]


def local_losses(loss: str, beta: float, params: Any, hs: list, logits: jax.Array, batch: Batch) -> dict:
    """``{"local": [L_l], "pred": [...], "sim": [...]}`` for the hidden outputs ``hs`` (module doc)."""
    nb = logits.ndim - 1
    out = {"local": [], "pred": [], "sim": []}
    t = label_targets(logits, batch.y) if loss != "pred" else None
    for p, h in zip(params, hs):
        parts = {}
        if loss != "sim":
            parts["pred"] = batch.loss(head_logits(p["head"], h, nb), batch.y)
        if loss != "pred":
            parts["sim"] = sim_loss(h, t, nb)
        for k, v in parts.items():
            out[k].append(v)
        out["local"].append((1 - beta) * parts["pred"] + beta * parts["sim"] if loss == "predsim"
                            else parts[loss])
    return out


def local_objective(loss: str, beta: float):
    """The objective ``(model, params, batch, feedback, key) -> (task loss, Aux)`` whose gradient is
    that of ``task + sum_l L_l`` (every block's input detached, module doc)."""
    sg = jax.lax.stop_gradient

    def objective(model, params, batch, feedback, key):
        del feedback
        logits, stats, hs = batch_forward(model, params, batch, detached_wire, key)
        task = batch.loss(logits, batch.y)
        parts = local_losses(loss, beta, params, hs, logits, batch)
        total = sum(parts["local"], jnp.zeros((), task.dtype))
        value = task + (total - sg(total))

        def mean(vs):
            return sg(sum(vs, jnp.zeros((), task.dtype)) / max(len(hs), 1))

        used = ("local",) + {"pred": ("pred",), "sim": ("sim",), "predsim": ("pred", "sim")}[loss]
        metrics = {f"local_{k}" if k != "local" else "local_loss": mean(parts[k]) for k in used}
        return value, Aux(logits, stats, metrics)

    return objective


def local(loss: str = "predsim", beta: float = 0.99) -> Rule:
    """The local-loss :class:`fa_jax.Rule`: ``loss`` one of pred, sim, predsim; ``beta`` in [0, 1] weighs
    predsim's sim part (module doc; pred and sim ignore it)."""
    checks.choice("local option loss", loss, LOSSES)
    checks.number_in("local: beta", beta, 0, 1, hi_open=False)
    doc = f"local losses ({loss}), every block's input detached (Nøkland & Eidnes 2019)"
    return Rule("local", doc=doc, family=Family.LOCAL, objective=local_objective(loss, float(beta)),
                check_model=model_check(loss != "sim"), init_params=None if loss == "sim" else init_heads)


register_factory("local", local)
