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
on 8x8 digits it trains as activity does, and as sigma = 1e-2 and 1e-4 do.

Options: ``fg(kind="weight"|"activity", n=1, local="none", beta=0.99)``: ``n`` directions per step
(vmapped), their estimates averaged (for activity, n directions per example); ``local`` ``"pred"``,
``"sim"`` or ``"predsim"``: every block's input detached, each block's estimate of its own local
loss (Ren et al. 2023; :mod:`fa_jax.rules.fg_local`), ``beta`` weighing predsim's sim part as
``local``'s does (refused with ``local="none"``). ``node_pert(sigma=1e-3)``.
``activity`` and ``node_pert`` need a layered model (fj.mlp, norm_mlp, the conv nets) whose
params are the weighted maps' ``w``, ``b`` only (no normalization, no prelu: those would get no
update); dropout keeps one mask for all passes. Metrics: ``fg_directional_derivative`` (mean
``|d|``: per direction for weight, per example and direction for activity) and
``node_pert_directional_derivative`` (mean ``|l_i(noisy) - l_i(clean)| / sigma``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.rules.core import Aux, Batch, Family, Rule, normalize, register_factory, surrogate
from fa_jax.rules.layered import Shifted, batch_forward, check_layered, check_map_params, per_example_loss

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

KINDS = ("weight", "activity")
LOCAL = ("none", "pred", "sim", "predsim")  # fg's local losses (fa_jax.rules.fg_local)
sg = jax.lax.stop_gradient


class WeightEstimate(NamedTuple):
    """``fg(kind=weight)``'s pieces: the clean ``loss``, ``logits`` and new ``stats`` (None unless
    stateful); ``directions``: the params' tree, each leaf (n, *leaf.shape); ``d``: (n,) the
    directional derivatives ``grad L . v_j``; ``update``: ``mean_j d_j v_j`` in the params' tree."""

    loss: jax.Array
    logits: jax.Array
    stats: Any
    directions: Any
    d: jax.Array
    update: Any


class MapEstimate(NamedTuple):
    """``fg(kind=activity)``'s and ``node_pert``'s pieces: the clean ``loss``, ``logits``, ``stats``;
    ``zs``: each map's output ``z_l`` (B, ...) from the pass with detached block inputs;
    ``directions``: ``u_l`` (n, *z_l.shape) / ``xi_l`` (z_l.shape); ``d``: (n, B) / (B,) the
    per-example directional derivatives of ``l_i`` (loss differences / sigma for node_pert);
    ``grads``: ``g_z_l``, the estimates of ``dL/dz_l`` shaped like ``z_l``."""

    loss: jax.Array
    logits: jax.Array
    stats: Any
    zs: list
    directions: list
    d: jax.Array
    grads: list


def weight_directions(key: jax.Array, params: Any, n: int) -> Any:
    """``n`` directions ``v ~ N(0, I)`` over all params: the params' tree, leaves (n, *leaf.shape)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return tree.unflatten([jax.random.normal(k, (n, *p.shape), p.dtype) for k, p in zip(keys, leaves)])


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _bilinear(fn: Callable, h: jax.Array, w: jax.Array) -> jax.Array:
    """``fn(h, w)`` for a map bilinear in ``(h, w)`` (a conv: fa_jax's is a ``custom_vjp``, which
    forward mode cannot enter), with its tangent written out: ``fn(dh, w) + fn(h, dw)``."""
    return fn(h, w)


@_bilinear.defjvp
def _bilinear_jvp(fn, primals, tangents):
    (h, w), (dh, dw) = primals, tangents
    return fn(h, w), fn(dh, w) + fn(h, dw)


class _ForwardMode(Shifted):
    """:class:`Shifted` whose non-dense maps run through :func:`_bilinear`: a pass ``jax.jvp`` can enter."""

    def apply(self, fn, h, w, b):
        return self._out(_bilinear(fn, h, w) + b)


def _map_pass(model, params, batch, key, shifts=None, detach=False, jvp=False):
    """``(logits, stats, zs)``: the model's forward with ``shifts[l]`` added to ``z_l`` (None: none);
    with ``detach`` every block's input behind ``stop_gradient`` (gradients reach each layer's own
    map only); with ``jvp`` forward mode enters every map (:class:`_ForwardMode`)."""
    op = _ForwardMode if jvp else Shifted

    def wire(layers, ps, h):
        zs = []
        for i, (layer, p) in enumerate(zip(layers, ps)):
            o = op(None if shifts is None else shifts[i])
            h = layer(p, sg(h) if detach else h, o)
            zs.append(o.z)
        return h, zs

    return batch_forward(model, params, batch, wire, key)


def fg_weight(model: Model, params: Any, batch: Batch, key: jax.Array, n: int = 1) -> WeightEstimate:
    """Weight-perturbed forward gradient (module doc): ``d_j = grad L . v_j`` by one jvp of the
    loss with BP's wiring (a layered model's own forward; else ``model.apply``) per direction,
    vmapped over the ``n`` directions of :func:`weight_directions` (``key`` split in (directions, model))."""
    k_dir, k_model = jax.random.split(key)
    kw = {"train": True, "key": k_model} if contract.is_stochastic(model) else {}
    if batch.stats is not None:
        kw.update(train=True, stats=batch.stats)

    def loss(p):
        if getattr(model, "layers", None) is not None:
            logits, stats, _ = _map_pass(model, p, batch, k_model, jvp=True)
        else:
            out = model.apply(p, batch.x, rule="bp", feedback=None, **kw)
            logits, stats = out if batch.stats is not None else (out, None)
        return batch.loss(logits, batch.y), (logits, stats)

    vs = weight_directions(k_dir, params, n)
    p0 = sg(params)
    value, d, (logits, stats) = jax.vmap(lambda v: jax.jvp(loss, (p0,), (v,), has_aux=True),
                                         out_axes=(None, 0, None))(vs)
    update = jax.tree.map(lambda v: jnp.tensordot(d.astype(v.dtype), v, 1) / n, vs)
    return WeightEstimate(value, logits, stats, vs, d, update)


def _normals(key, zs, lead=()):
    keys = jax.random.split(key, len(zs))
    return [jax.random.normal(k, (*lead, *z.shape), z.dtype) for k, z in zip(keys, zs)]


def _per_example(d, z):
    return d.reshape(d.shape + (1,) * (z.ndim - 1)).astype(z.dtype)


def fg_activity(model: Model, params: Any, batch: Batch, key: jax.Array, n: int = 1) -> MapEstimate:
    """Activity-perturbed forward gradient (module doc): ``d_ji = sum_l (dl_i/dz_l,i) . u_jl,i`` by
    one jvp of the per-example losses w.r.t. the maps' shifts per direction (vmapped over n);
    ``g_z_l = mean_j d_j u_jl / B``. ``key`` split in (directions, model)."""
    k_dir, k_model = jax.random.split(key)
    logits, stats, zs = _map_pass(model, params, batch, k_model, detach=True)
    us = _normals(k_dir, zs, (n,))
    p0 = sg(params)

    def losses(shifts):
        return per_example_loss(batch.loss, _map_pass(model, p0, batch, k_model, shifts, jvp=True)[0], batch.y)

    zeros = [jnp.zeros(z.shape, z.dtype) for z in zs]
    d = jax.vmap(lambda u: jax.jvp(losses, (zeros,), (u,))[1])(us)  # (n, B)
    b = d.shape[1]
    grads = [jnp.mean(jax.vmap(_per_example, (0, None))(d, z) * u, axis=0) / b for u, z in zip(us, zs)]
    return MapEstimate(batch.loss(logits, batch.y), logits, stats, zs, us, d, grads)


def node_perturbation(model: Model, params: Any, batch: Batch, key: jax.Array, sigma: float = 1e-3) -> MapEstimate:
    """Node perturbation (module doc): ``d_i = (l_i(z + sigma xi) - l_i(z)) / sigma`` from a clean and
    a perturbed pass, ``g_z_l = d xi_l / B``. ``key`` split in (directions, model)."""
    k_dir, k_model = jax.random.split(key)
    logits, stats, zs = _map_pass(model, params, batch, k_model, detach=True)
    xis = _normals(k_dir, zs)
    clean = per_example_loss(batch.loss, sg(logits), batch.y)
    noisy_logits = _map_pass(model, sg(params), batch, k_model, [sigma * xi for xi in xis])[0]
    d = (per_example_loss(batch.loss, noisy_logits, batch.y) - clean) / sigma
    grads = [_per_example(d, z) * xi / d.shape[0] for xi, z in zip(xis, zs)]
    return MapEstimate(batch.loss(logits, batch.y), logits, stats, zs, xis, d, grads)


def _map_objective(estimate, metric):
    def objective(model, params, batch, feedback, key):
        del feedback
        e = estimate(model, params, batch, key)
        value = surrogate(e.loss, e.grads, e.zs)  # grad w.r.t. params: each layer's map's transpose of g_z
        return value, Aux(e.logits, e.stats, {metric: jnp.mean(jnp.abs(e.d))})

    return objective


def _check_maps(spec):
    def check(model):
        rule = normalize(spec)  # the name the rule is known by
        check_layered(model, rule)
        check_map_params(model, rule, "sends its estimate to the weighted maps' outputs z_l only")

    return check


def fg(kind: str = "weight", n: int = 1, local: str = "none", beta: float = 0.99) -> Rule:
    """Forward gradients: ``kind`` ``"weight"`` (perturb all params) or ``"activity"`` (perturb every
    map's output), the estimates of ``n`` directions averaged (module doc); ``local`` pred, sim or
    predsim: each block's estimate of its own local loss, ``beta`` weighing predsim's sim part
    (:mod:`fa_jax.rules.fg_local`)."""
    checks.choice("fg option kind", kind, KINDS)
    checks.positive_int("fg: n", n)
    checks.choice("fg option local", local, LOCAL)
    checks.number_in("fg: beta", beta, 0, 1, hi_open=False)
    if local != "none":
        from fa_jax.rules import fg_local  # it builds on this module

        return fg_local.rule(kind, n, local, beta)
    if beta != 0.99:
        raise InputError(f"fg: beta weighs local=predsim's sim part; got beta={beta!r} with local=none")
    if kind == "weight":
        def objective(model, params, batch, feedback, key):
            del feedback
            e = fg_weight(model, params, batch, key, n)
            return surrogate(e.loss, e.update, params), Aux(e.logits, e.stats,
                                                             {"fg_directional_derivative": jnp.mean(jnp.abs(e.d))})

        return Rule("fg", objective=objective, family=Family.FORWARD,
                    doc=f"forward gradient: (grad L . v) v, v ~ N(0, I) over all params, by jvp, mean of n={n} "
                        f"(Baydin et al. 2022)")
    return Rule("fg", objective=_map_objective(lambda *a: fg_activity(*a, n), "fg_directional_derivative"),
                family=Family.FORWARD, check_model=_check_maps(f"fg(kind=activity;n={n})"),
                doc=f"activity-perturbed forward gradient: x_l^T (d u_l), d = sum_l dl/dz_l . u_l by jvp, "
                    f"mean of n={n} (Ren et al. 2023)")


def node_pert(sigma: float = 1e-3) -> Rule:
    """Node perturbation with noise scale ``sigma`` > 0 on every map's output (module doc)."""
    checks.positive_number("node_pert: sigma", sigma)
    return Rule("node_pert", objective=_map_objective(lambda *a: node_perturbation(*a, sigma),
                                                      "node_pert_directional_derivative"),
                family=Family.FORWARD, check_model=_check_maps(f"node_pert(sigma={sigma!r})"),
                doc=f"node perturbation: x_l^T ((l(z + sigma xi) - l(z)) / sigma xi_l), sigma={sigma:g} "
                    f"(Werfel et al. 2005)")


register_factory("fg", fg)
register_factory("node_pert", node_pert)
