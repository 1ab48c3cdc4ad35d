"""Perturbation rules: forward gradients (``fg``) and node perturbation (``node_pert``), no backward pass.

Each rule estimates the gradient of the batch loss ``L = mean_i l_i`` from forward computations
along random directions; ``jax.grad`` of its objective is the estimate (:func:`fa_jax.rules.surrogate`).

``fg(kind="weight")`` (Baydin et al. 2022, "Gradients without backpropagation"): with one
direction ``v ~ N(0, I)`` over all params, the directional derivative ``d = grad L . v`` comes
from one ``jax.jvp`` of the loss (forward mode), and the update is ``d v``; unbiased, since
``E[v v^T] = I``. Runs on any model with BP's wiring: a layered model's own forward (its convs, a
``custom_vjp`` that forward mode cannot enter, through their bilinear tangent ``fn(dh, w) + fn(h,
dw)``), any other (a wrapped Flax model) through ``model.apply``. Its covariance is ``||g||^2 I + g
g^T`` (``g = grad L``): the noise grows with the number of params P (``E||d v - g||^2 = (P + 1)
||g||^2``), so one direction needs a learning rate ~1/P of BP's.

``fg(kind="activity")`` (Ren et al. 2023, "Scaling forward gradient with local losses", the
activity-perturbed forward gradient): every weighted map's output ``z_l = h_{l-1} W_l + b_l`` (or a
conv's; pre-activation; the logits included) is perturbed by ``u_l ~ N(0, I)``, drawn per example.
One jvp of the per-example losses w.r.t. the shifts gives, per example i,

    d_i = sum_l (dl_i/dz_l,i) . u_l,i,      g_z_l,i = d_i u_l,i / B       (an estimate of dL/dz_l,i)

and the update of layer l is ``h_{l-1}^T g_z_l`` (bias: ``sum_i g_z_l,i``; a conv: its own
transpose), the gradient of ``sum_l vdot(stop_gradient(g_z_l), z_l)`` through a pass whose block
inputs are detached. Also unbiased, with per example the covariance ``||delta_i||^2 I + delta_i
delta_i^T`` (``delta_i`` all of example i's ``dL/dz_l,i``): the direction has as many entries as
the network has units per example (D), not weights (P ~ D x fan-in), so the noise is ~fan-in times
smaller (Ren et al.: O(D) instead of O(P)), and the B examples' directions are independent, so the
batch averages it further.

``node_pert(sigma=1e-3)`` (Werfel, Xie & Seung 2005; Lillicrap et al. 2020): a clean pass and one
with ``sigma xi_l`` (``xi ~ N(0, I)``, per example) added to every ``z_l``; the loss change gives

    g_z_l,i = (l_i(noisy) - l_i(clean)) / sigma * xi_l,i / B

and the update is ``x_l^T g_z_l``, ``x_l`` the clean pass's layer input, as for ``activity``. To
first order in sigma it is activity's estimate for ``u = xi``: a draw differs from it by O(sigma),
the mean by O(sigma^2) on a smooth network (the O(sigma) term is odd in xi); two forward passes, no
jvp. Default ``sigma = 1e-3``: in float32 the loss change (~1e-3) keeps ~4 significant digits
against rounding (~1e-7), while the curvature and ReLU-kink error, ~sigma relative, stays small;
on 8x8 digits (``fj.mlp([64, 32, 10])``, 1000 Adam steps at lr 3e-3, batch 32; mean test accuracy
over 3 seeds) it reaches 0.938, as activity does (0.938) and sigma = 1e-2 and 1e-4 do (0.937, 0.938;
BP: 0.965).

Options: ``fg(kind="weight"|"activity", n=1, local="none", beta=0.99)``: ``n`` directions per step
(vmapped), their estimates averaged (for activity, n directions per example); ``local`` ``"pred"``,
``"sim"`` or ``"predsim"``: every block's input detached, each block's estimate of its own local
loss (Ren et al. 2023; :mod:`fa_jax.rules.fg_local`: these estimators with the blocks' loss
``rows``), ``beta`` weighing predsim's sim part as ``local``'s does (a non-default beta is refused
with any other ``local``). ``node_pert(sigma=1e-3)``.
``activity`` and ``node_pert`` need a layered model (fj.mlp, norm_mlp, the conv nets) whose
params are the weighted maps' ``w``, ``b`` only (no normalization, no prelu: those would get no
update); dropout keeps one mask (the model key's) for all passes. Metrics: ``fg_directional_derivative``
(mean ``|d|``: per direction for weight, per example and direction for activity) and
``node_pert_directional_derivative`` (mean ``|l_i(noisy) - l_i(clean)| / sigma``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.models import contract
from fa_jax.rules.core import Aux, Batch, Family, Rule, register_factory, surrogate
from fa_jax.rules.layered import block_pass, model_check, normals, per_example, per_example_loss
from fa_jax.rules.local import BETA, check_beta
from fa_jax.rules.rule import Objective

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

KINDS = ("weight", "activity")
LOCAL = ("none", "pred", "sim", "predsim")  # fg's local losses (fa_jax.rules.fg_local)
sg = jax.lax.stop_gradient
# rows(params, logits, hs) -> every layer's own loss, the task loss last: (L,) for weight, (L, B) per
# example for activity (fa_jax.rules.fg_local), from a pass whose block inputs are detached
Rows = Callable[[Any, jax.Array, list], jax.Array]


class Estimate(NamedTuple):
    """An estimator's pieces: the clean ``loss``, ``logits`` and new ``stats`` (None unless stateful).

    ``directions``: weight: the params' tree, each leaf (n, *leaf.shape); activity: ``u_l`` (n,
    *z_l.shape); node_pert: ``xi_l`` (z_l.shape). ``d``: the directional derivatives, weight (n,)
    ``grad L . v_j`` (with rows (n, L): layer l's loss along layer l's params), activity (n, B)
    (with rows (n, L, B)), node_pert (B,) loss differences over sigma. ``update``: weight ``mean_j
    d_j v_j`` in the params' tree (with rows: per layer, ``d_jl`` times layer l's directions);
    activity and node_pert ``g_z_l``, the estimates of ``dL/dz_l`` shaped like ``z_l``. ``zs``: each
    map's output ``z_l`` (B, ...) from the pass with detached block inputs (weight: None); ``hs``:
    with rows, the hidden blocks' outputs (detached), else None.
    """

    loss: jax.Array
    logits: jax.Array
    stats: Any
    directions: Any
    d: jax.Array
    update: Any
    zs: list | None = None
    hs: list | None = None


def weight_directions(key: jax.Array, params: Any, n: int) -> Any:
    """``n`` directions ``v ~ N(0, I)`` over all params: the params' tree, leaves (n, *leaf.shape)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return tree.unflatten([jax.random.normal(k, (n, *p.shape), p.dtype) for k, p in zip(keys, leaves)])


def fg_weight(model: Model, params: Any, batch: Batch, key: jax.Array, n: int = 1,
              rows: Rows | None = None) -> Estimate:
    """Weight-perturbed forward gradient (module doc): ``d_j = grad L . v_j`` by one jvp of the
    loss with BP's wiring (a layered model's own forward; else ``model.apply``) per direction,
    vmapped over the ``n`` directions of :func:`weight_directions` (``key`` split in (directions, model)).

    ``rows`` (a layered model, params one entry per layer): the losses jvp'd are ``rows(params,
    logits, hs)`` (L,) through a pass with every block's input detached, so layer l's params reach
    row l only; layer l's update is ``mean_j d_jl v_jl`` (:mod:`fa_jax.rules.fg_local`)."""
    k_dir, k_model = jax.random.split(key)

    def loss(p):
        if rows is not None:
            logits, stats, _, hs = block_pass(model, p, batch, k_model, detach=True, jvp=True)
            return rows(p, logits, hs), (logits, stats, hs)
        if getattr(model, "layers", None) is not None:
            logits, stats, _, _ = block_pass(model, p, batch, k_model, jvp=True)
        else:
            kw = {"train": True, "key": k_model} if contract.is_stochastic(model) else {}
            if batch.stats is not None:
                kw.update(train=True, stats=batch.stats)
            out = model.apply(p, batch.x, rule="bp", feedback=None, **kw)
            logits, stats = out if batch.stats is not None else (out, None)
        return batch.loss(logits, batch.y), (logits, stats, None)

    vs = weight_directions(k_dir, params, n)
    p0 = sg(params)
    value, d, (logits, stats, hs) = jax.vmap(lambda v: jax.jvp(loss, (p0,), (v,), has_aux=True),
                                             out_axes=(None, 0, None))(vs)
    if rows is None:
        update = jax.tree.map(lambda v: jnp.tensordot(d.astype(v.dtype), v, 1) / n, vs)
        return Estimate(value, logits, stats, vs, d, update)
    update = [jax.tree.map(lambda v, k=k: jnp.tensordot(d[:, k].astype(v.dtype), v, 1) / n, vk)
              for k, vk in enumerate(vs)]
    return Estimate(value[-1], logits, stats, vs, d, update, hs=hs)


def fg_activity(model: Model, params: Any, batch: Batch, key: jax.Array, n: int = 1,
                rows: Rows | None = None) -> Estimate:
    """Activity-perturbed forward gradient (module doc): ``d_ji = sum_l (dl_i/dz_l,i) . u_jl,i`` by
    one jvp of the per-example losses w.r.t. the maps' shifts per direction (vmapped over n);
    ``g_z_l = mean_j d_j u_jl / B``. ``key`` split in (directions, model); one dropout mask (the
    model key's) for every pass.

    ``rows``: the losses jvp'd are ``rows(params, logits, hs)`` (L, B) through a pass with every
    block's input detached, so ``u_l`` reaches row l only: ``d`` (n, L, B), ``g_z_l = mean_j d_jl
    u_jl / B`` (:mod:`fa_jax.rules.fg_local`)."""
    k_dir, k_model = jax.random.split(key)
    logits, stats, zs, hs = block_pass(model, params, batch, k_model, detach=True, maps=True)
    us = normals(k_dir, zs, (n,))
    p0 = sg(params)

    def losses(shifts):
        out, _, _, hh = block_pass(model, p0, batch, k_model, shifts=shifts, detach=rows is not None, jvp=True)
        return per_example_loss(batch.loss, out, batch.y) if rows is None else rows(p0, out, hh)

    zeros = [jnp.zeros(z.shape, z.dtype) for z in zs]
    d = jax.vmap(lambda u: jax.jvp(losses, (zeros,), (u,))[1])(us)  # (n, B) or (n, L, B)
    b = d.shape[-1]
    grads = [jnp.mean(jax.vmap(per_example, (0, None))(d if rows is None else d[:, k], z) * u, axis=0) / b
             for k, (u, z) in enumerate(zip(us, zs))]
    return Estimate(batch.loss(logits, batch.y), logits, stats, us, d, grads, zs, None if rows is None else sg(hs))


def node_perturbation(model: Model, params: Any, batch: Batch, key: jax.Array, sigma: float = 1e-3) -> Estimate:
    """Node perturbation (module doc): ``d_i = (l_i(z + sigma xi) - l_i(z)) / sigma`` from a clean and
    a perturbed pass, ``g_z_l = d xi_l / B``. ``key`` split in (directions, model)."""
    k_dir, k_model = jax.random.split(key)
    logits, stats, zs, _ = block_pass(model, params, batch, k_model, detach=True, maps=True)
    xis = normals(k_dir, zs)
    clean = per_example_loss(batch.loss, sg(logits), batch.y)
    noisy_logits = block_pass(model, sg(params), batch, k_model, shifts=[sigma * xi for xi in xis])[0]
    d = (per_example_loss(batch.loss, noisy_logits, batch.y) - clean) / sigma
    grads = [per_example(d, z) * xi / d.shape[0] for xi, z in zip(xis, zs)]
    return Estimate(batch.loss(logits, batch.y), logits, stats, xis, d, grads, zs)


def estimate_objective(estimate: Callable[..., Estimate], metric: str) -> Objective:
    """The objective of ``estimate(model, params, batch, key)``: its update (:func:`surrogate`: the
    params' for weight; through each map's output ``z_l`` for activity and node_pert, whose transpose
    gives each layer's update), ``metric`` the mean ``|d|``; value: the clean loss."""

    def objective(model, params, batch, feedback, key):
        del feedback
        e = estimate(model, params, batch, key)
        value = surrogate(e.loss, e.update, params if e.zs is None else e.zs)
        return value, Aux(e.logits, e.stats, {metric: jnp.mean(jnp.abs(e.d))})

    return objective


def fg(kind: str = "weight", n: int = 1, local: str = "none", beta: float = BETA) -> Rule:
    """Forward gradients: ``kind`` ``"weight"`` (perturb all params) or ``"activity"`` (perturb every
    map's output), the estimates of ``n`` directions averaged (module doc); ``local`` pred, sim or
    predsim: each block's estimate of its own local loss, ``beta`` weighing predsim's sim part
    (:mod:`fa_jax.rules.fg_local`; refused unless default elsewhere)."""
    checks.choice("fg option kind", kind, KINDS)
    checks.positive_int("fg: n", n)
    checks.choice("fg option local", local, LOCAL)
    checks.number_in("fg: beta", beta, 0, 1, hi_open=False)
    check_beta("fg", beta, "local", local)
    if local != "none":
        from fa_jax.rules import fg_local  # it builds on this module

        return fg_local.rule(kind, n, local, beta)
    metric = "fg_directional_derivative"
    if kind == "weight":
        return Rule("fg", objective=estimate_objective(lambda *a: fg_weight(*a, n), metric), family=Family.FORWARD,
                    doc=f"forward gradient: (grad L . v) v, v ~ N(0, I) over all params, by jvp, mean of n={n} "
                        f"(Baydin et al. 2022)")
    return Rule("fg", objective=estimate_objective(lambda *a: fg_activity(*a, n), metric),
                family=Family.FORWARD, check_model=model_check(f"fg(kind=activity;n={n})", maps=True),
                doc=f"activity-perturbed forward gradient: x_l^T (d u_l), d = sum_l dl/dz_l . u_l by jvp, "
                    f"mean of n={n} (Ren et al. 2023)")


def node_pert(sigma: float = 1e-3) -> Rule:
    """Node perturbation with noise scale ``sigma`` > 0 on every map's output (module doc)."""
    checks.positive_number("node_pert: sigma", sigma)
    return Rule("node_pert", objective=estimate_objective(lambda *a: node_perturbation(*a, sigma),
                                                          "node_pert_directional_derivative"),
                family=Family.FORWARD, check_model=model_check(f"node_pert(sigma={sigma!r})", maps=True),
                doc=f"node perturbation: x_l^T ((l(z + sigma xi) - l(z)) / sigma xi_l), sigma={sigma:g} "
                    f"(Werfel et al. 2005)")


register_factory("fg", fg)
register_factory("node_pert", node_pert)
