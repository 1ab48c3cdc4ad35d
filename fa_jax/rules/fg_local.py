"""Forward gradients on local losses: ``fg(local=pred|sim|predsim; beta)`` (Ren, Kornblith, Liao &
Hinton 2023, "Scaling forward gradient with local losses").

Every block's input is detached, as in :mod:`fa_jax.rules.local`, so a perturbation of block l
reaches one loss only, block l's own: hidden block l's local loss ``L_l`` of its output ``h_l``
(local's pred, sim or predsim, its functions and its heads ``params[l]["head"]``), the last layer's
the task loss. Each block's forward gradient thus estimates that block's part of ``local``'s update
(``jax.grad`` of ``local(loss=...)``'s objective), with the noise of one block instead of the network.

``kind="activity"``: ``u_l ~ N(0, I)`` on every map's output ``z_l`` (B, ...), per example i,

    d_l,i = B dL_l/dz_l,i . u_l,i,      g_z_l,i = d_l,i u_l,i / B      (an estimate of dL_l/dz_l,i)

all from one jvp of the stacked per-block, per-example losses (:func:`block_losses`, (blocks, B))
w.r.t. the maps' shifts; layer l's update is ``h_{l-1}^T g_z_l`` (bias ``sum_i g_z_l,i``), as for
``fg(kind=activity)``. Per example, the covariance is ``||delta||^2 I + delta delta^T`` (``delta =
dL_l/dz_l,i``). pred and the task loss are batch means of per-example losses, whose derivatives
these are. sim couples the batch (``S = U U^T``, ``U_i`` example i's centred unit row): its
per-example term ``s_i = (1/B) sum_j (U_i . sg(U_j) - R_ij)^2`` (``R = S(T)``), taken as ``2 s_i -
sg(s_i)``, has ``mean_i = L_sim`` and derivative w.r.t. ``h_i`` equal to ``B dL_sim/dh_i`` (``S_ij``
depends on ``h_i`` through row i and column i alike), so one jvp gives every example's term.

``kind="weight"``: per block, ``v_l ~ N(0, I)`` over the block's own params (its head excluded),
``d_l = grad_{theta_l} L_l . v_l`` (all blocks' from one jvp of the stacked ``[L_1, ..., task]``)
and ``g_l = d_l v_l``: covariance ``||g_l||^2 I + g_l g_l^T``, the noise of the block's param count,
not the network's.

The heads (pred, predsim) take their true local gradient, ``jax.grad`` of ``sum_l L_l`` w.r.t. the
heads with ``h_l`` detached ((1 - beta) pred's for predsim): a local backward through one linear
layer, as Ren et al. train their local loss heads. ``beta`` is fg's own option, default 0.99 as
local's: it weighs predsim's sim part (a non-default beta with pred or sim is refused, as local
refuses it). ``n``: the estimates of n directions per step (vmapped) averaged. The objective's value
is the task loss; metrics ``fg_directional_derivative`` (mean ``|d|`` over blocks, directions and
examples), ``local_loss`` and ``local_pred`` / ``local_sim`` as local's. Needs a layered model (with
``hidden_shapes`` for heads; for activity, params ``w``, ``b`` only, like ``fg(kind=activity)``),
the heads in the params (the rule's ``init_params``), and for sim and predsim class labels, as local.
Both kinds are :func:`fa_jax.rules.perturbation.fg_weight` / ``fg_activity`` on the blocks' own
losses (their ``rows``); a dropout model keeps one mask for the clean and the jvp passes.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from fa_jax.rules import perturbation as pt
from fa_jax.rules.layered import model_check, per_example_loss
from fa_jax.rules.local import HEAD, LocalLoss, init_heads, local_losses, local_total
from fa_jax.rules.rule import Aux, Batch, Family, Objective, Rule, surrogate

sg = jax.lax.stop_gradient


def block_params(params: list) -> list:
    """Every layer's params without its local head."""
    return [{k: v for k, v in p.items() if k != HEAD} for p in params]


def block_losses(local: LocalLoss, params: list, hs: list, logits: jax.Array, batch: Batch,
                 per_example: bool = False) -> jax.Array:
    """``[L_1, ..., L_{L-1}, task]`` (blocks,): every hidden block's local loss, the task loss last;
    ``per_example`` (blocks, B): rows whose mean is each loss and whose derivative w.r.t. ``h_l,i``
    is ``B dL_l/dh_l,i`` (:func:`fa_jax.rules.local.local_losses`)."""
    rows = local_losses(local, params, hs, logits, batch, per_example)["local"]
    task = per_example_loss(batch.loss, logits, batch.y) if per_example else batch.loss(logits, batch.y)
    return jnp.stack([*rows, task])


def estimate(kind: str, local: LocalLoss, n: int, model: Any, params: Any, batch: Batch,
             key: jax.Array) -> pt.Estimate:
    """Every block's forward gradient of its own loss (module doc): :func:`fa_jax.rules.perturbation.fg_activity`
    on the per-example rows of :func:`block_losses` (``d`` (n, blocks, B), ``update`` the ``g_z_l``),
    or :func:`~fa_jax.rules.perturbation.fg_weight` over the heads-free params on its rows (``d`` (n,
    blocks), ``update`` per layer, heads excluded, held fixed); ``hs`` the hidden outputs, detached."""
    if kind == "activity":
        return pt.fg_activity(model, params, batch, key, n,
                              lambda p, logits, hs: block_losses(local, p, hs, logits, batch, per_example=True))
    heads = [{HEAD: sg(p[HEAD])} if HEAD in p else {} for p in params]
    return pt.fg_weight(model, block_params(params), batch, key, n, lambda bs, logits, hs: block_losses(
        local, [{**b, **h} for b, h in zip(bs, heads)], hs, logits, batch))


def objective(kind: str, local: LocalLoss, n: int) -> Objective:
    """fg's objective with local losses: the blocks' estimates (:func:`surrogate`) plus the heads'
    true local gradient (``h_l`` detached); value: the task loss."""

    def fn(model, params, batch, feedback, key):
        del feedback
        e = estimate(kind, local, n, model, params, batch, key)
        value = surrogate(e.loss, e.update, e.zs if kind == "activity" else block_params(params))
        heads, metrics = local_total(local, params, e.hs, sg(e.logits), batch, value.dtype)
        metrics["fg_directional_derivative"] = jnp.mean(jnp.abs(e.d))
        return value + (heads - sg(heads)), Aux(e.logits, e.stats, metrics)

    return fn


def rule(kind: str, n: int, loss: str, beta: float) -> Rule:
    """The fg :class:`Rule` with local loss ``loss`` (options checked by :func:`fa_jax.rules.perturbation.fg`)."""
    spec = f"fg(kind={kind};local={loss};n={n};beta={beta!r})"
    heads = loss != "sim"
    what = ("(grad L_l . v_l) v_l over block l's params" if kind == "weight"
            else "x_l^T (d_l u_l), d_l = dL_l/dz_l . u_l")
    return Rule("fg", objective=objective(kind, LocalLoss(loss, float(beta), spec), n), family=Family.FORWARD,
                check_model=model_check(spec, heads=heads, maps=kind == "activity"),
                init_params=functools.partial(init_heads, rule=spec) if heads else None,
                doc=f"forward gradient on local losses ({loss}): {what} by jvp, inputs detached, mean of n={n} "
                    f"(Ren et al. 2023)")
