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
local's: it weighs predsim's sim part; pred and sim ignore it. ``n``: the estimates of n directions
per step (vmapped) averaged. The objective's value is the task loss; metrics
``fg_directional_derivative`` (mean ``|d|`` over blocks, directions and examples), ``local_loss``
and ``local_pred`` / ``local_sim`` as local's. Needs a layered model (with ``hidden_shapes`` for
heads; for activity, params ``w``, ``b`` only, like ``fg(kind=activity)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from fa_jax.models import contract
from fa_jax.rules.core import normalize
from fa_jax.rules.layered import Shifted, batch_forward, check_layered, check_map_params, per_example_loss
from fa_jax.rules.local import EPS, head_logits, init_heads, label_targets, local_losses, similarity
from fa_jax.rules.perturbation import _ForwardMode, _normals, _per_example, weight_directions
from fa_jax.rules.rule import Aux, Batch, Family, Rule, surrogate

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

HEAD = "head"
sg = jax.lax.stop_gradient


class LocalEstimate(NamedTuple):
    """fg's pieces with local losses: the clean task ``loss``, ``logits``, ``stats``; ``hs`` the hidden
    blocks' outputs (detached); ``zs`` every map's output (activity; None for weight); ``directions``
    ``u_l`` (n, *z_l.shape) / the block params' tree, leaves (n, *leaf.shape); ``d`` (n, blocks, B) /
    (n, blocks) the directional derivatives (module doc); ``update``: ``g_z_l`` shaped like ``z_l`` /
    ``mean_j d_jl v_jl`` in the block params' tree (heads excluded)."""

    loss: jax.Array
    logits: jax.Array
    stats: Any
    hs: list
    zs: list | None
    directions: Any
    d: jax.Array
    update: Any


def block_params(params: list) -> list:
    """Every layer's params without its local head."""
    return [{k: v for k, v in p.items() if k != HEAD} for p in params]


def detached_pass(model: Model, params: Any, batch: Batch, key: jax.Array, shifts: list | None = None,
                  jvp: bool = False) -> tuple[Any, Any, tuple[list, list]]:
    """``(logits, stats, (zs, hs))``: the forward with every block's input detached and ``shifts[l]``
    added to ``z_l``; ``zs`` the maps' outputs (unshifted), ``hs`` the hidden blocks' outputs; with
    ``jvp`` forward mode enters every map."""
    op = _ForwardMode if jvp else Shifted

    def wire(layers, ps, h):
        zs, hs = [], []
        for i, (layer, p) in enumerate(zip(layers, ps)):
            o = op(None if shifts is None else shifts[i])
            h = layer(p, sg(h), o)
            zs.append(o.z)
            hs.append(h)
        return h, (zs, hs[:-1])

    return batch_forward(model, params, batch, wire, key)


def sim_per_example(h: jax.Array, t: jax.Array) -> jax.Array:
    """(B,) sim terms of a block output h (B, ...) and targets t (B, K): their mean is local's
    ``sim_loss(h, t)``, their derivative w.r.t. ``h_i`` B times its (module doc)."""
    b = h.shape[0]
    c = h.reshape(b, -1)
    c = c - c.mean(axis=1, keepdims=True)
    u = c / jnp.sqrt(jnp.sum(c * c, axis=1, keepdims=True) + EPS)
    s = jnp.mean((u @ sg(u).T - sg(similarity(t.reshape(b, -1)))) ** 2, axis=1)
    return 2 * s - sg(s)


def block_losses(loss: str, beta: float, params: list, hs: list, logits: jax.Array, batch: Batch) -> jax.Array:
    """(blocks, B): per example, every hidden block's local loss (mean over examples ``L_l``, derivative
    w.r.t. ``h_l,i`` ``B dL_l/dh_l,i``), the task loss last."""
    t = label_targets(logits, batch.y) if loss != "pred" else None
    rows = []
    for p, h in zip(params, hs):
        pred = per_example_loss(batch.loss, head_logits(p[HEAD], h), batch.y) if loss != "sim" else 0
        sim = sim_per_example(h, t) if loss != "pred" else 0
        rows.append({"pred": pred, "sim": sim, "predsim": (1 - beta) * pred + beta * sim}[loss])
    return jnp.stack([*rows, per_example_loss(batch.loss, logits, batch.y)])


def fg_local_activity(model: Model, params: Any, batch: Batch, key: jax.Array, loss: str, beta: float = 0.99,
                      n: int = 1) -> LocalEstimate:
    """Activity-perturbed forward gradients of every block's own loss (module doc): ``d`` (n, blocks, B)
    by one jvp per direction (vmapped over n), ``g_z_l = mean_j d_jl u_jl / B``. ``key`` split in
    (directions, model), as ``fg(kind=activity)``'s: the same key draws the same ``u``."""
    k_dir, k_model = jax.random.split(key)
    logits, stats, (zs, hs) = detached_pass(model, params, batch, k_model)
    us = _normals(k_dir, zs, (n,))
    p0 = sg(params)

    def losses(shifts):
        out, _, (_, hh) = detached_pass(model, p0, batch, k_model, shifts, jvp=True)
        return block_losses(loss, beta, p0, hh, out, batch)

    zeros = [jnp.zeros(z.shape, z.dtype) for z in zs]
    d = jax.vmap(lambda u: jax.jvp(losses, (zeros,), (u,))[1])(us)  # (n, blocks, B)
    b = d.shape[-1]
    grads = [jnp.mean(jax.vmap(_per_example, (0, None))(d[:, k], z) * u, axis=0) / b
             for k, (u, z) in enumerate(zip(us, zs))]
    return LocalEstimate(batch.loss(logits, batch.y), logits, stats, sg(hs), zs, us, d, grads)


def fg_local_weight(model: Model, params: Any, batch: Batch, key: jax.Array, loss: str, beta: float = 0.99,
                    n: int = 1) -> LocalEstimate:
    """Weight-perturbed forward gradients of every block's own loss (module doc): ``d`` (n, blocks),
    ``d_jl = grad_{theta_l} L_l . v_jl``, by one jvp of the stacked block losses per direction
    (vmapped over the n of :func:`weight_directions` over the heads-free params); ``key`` split in
    (directions, model)."""
    k_dir, k_model = jax.random.split(key)
    heads = [{HEAD: sg(p[HEAD])} if HEAD in p else {} for p in params]
    b0 = sg(block_params(params))

    def losses(bs):
        ps = [{**b, **h} for b, h in zip(bs, heads)]
        logits, stats, (_, hs) = detached_pass(model, ps, batch, k_model, jvp=True)
        parts = local_losses(loss, beta, ps, hs, logits, batch)["local"]
        return jnp.stack([*parts, batch.loss(logits, batch.y)]), (logits, stats, hs)

    vs = weight_directions(k_dir, b0, n)
    values, d, (logits, stats, hs) = jax.vmap(lambda v: jax.jvp(losses, (b0,), (v,), has_aux=True),
                                              out_axes=(None, 0, None))(vs)
    update = [jax.tree.map(lambda v, k=k: jnp.tensordot(d[:, k].astype(v.dtype), v, 1) / n, vk)
              for k, vk in enumerate(vs)]
    return LocalEstimate(values[-1], logits, stats, hs, None, vs, d, update)


def objective(kind: str, loss: str, beta: float, n: int):
    """fg's objective with local losses: the blocks' estimates (:func:`surrogate`) plus the heads'
    true local gradient; value: the task loss."""
    estimate = fg_local_activity if kind == "activity" else fg_local_weight

    def fn(model, params, batch, feedback, key):
        del feedback
        e = estimate(model, params, batch, key, loss, beta, n)
        value = surrogate(e.loss, e.update, e.zs if kind == "activity" else block_params(params))
        parts = local_losses(loss, beta, params, e.hs, sg(e.logits), batch)  # h_l detached: heads only
        zero = jnp.zeros((), value.dtype)
        heads = sum(parts["local"], zero)

        def mean(vs):
            return sg(sum(vs, zero) / max(len(e.hs), 1))

        used = ("local",) + {"pred": ("pred",), "sim": ("sim",), "predsim": ("pred", "sim")}[loss]
        metrics = {"local_loss" if k == "local" else f"local_{k}": mean(parts[k]) for k in used}
        metrics["fg_directional_derivative"] = jnp.mean(jnp.abs(e.d))
        return value + (heads - sg(heads)), Aux(e.logits, e.stats, metrics)

    return fn


def rule(kind: str, n: int, loss: str, beta: float) -> Rule:
    """The fg :class:`Rule` with local loss ``loss`` (options checked by :func:`fa_jax.rules.perturbation.fg`)."""
    spec = f"fg(kind={kind};local={loss};n={n};beta={beta!r})"

    def check(model):
        name = normalize(spec)
        check_layered(model, name)
        if loss != "sim":
            contract.hidden_shapes(model, f"rule {name!r} (its local pred heads)")
        if kind == "activity":
            check_map_params(model, name, "sends its estimate to the weighted maps' outputs z_l only")

    what = ("(grad L_l . v_l) v_l over block l's params" if kind == "weight"
            else "x_l^T (d_l u_l), d_l = dL_l/dz_l . u_l")
    return Rule("fg", objective=objective(kind, loss, float(beta), n), family=Family.FORWARD, check_model=check,
                init_params=None if loss == "sim" else init_heads,
                doc=f"forward gradient on local losses ({loss}): {what} by jvp, inputs detached, mean of n={n} "
                    f"(Ren et al. 2023)")
