"""fg (forward gradients, weight and activity perturbation) and node_pert (float64 where exact): each
estimate against its formula (jax.grad for weight, the numpy reference for activity and node_pert),
the mean over many directions against BP within the variance the formula predicts, node_pert's
O(sigma) distance to its linearisation, the models each runs on (fg with local losses too), one
dropout mask for every pass, one map per Shifted op, one-line refusals, a learning sweep.

Statistics: for ``v ~ N(0, I)`` and a gradient ``g``, ``Cov[(g . v) v] = ||g||^2 I + g g^T``. For the
mean ``m`` of N independent estimates, each coordinate's ``z_j = (m_j - g_j) / sqrt((||g||^2 +
g_j^2) / N)`` is standard normal by the CLT; ``max |z|`` is checked against the Bonferroni bound
for a false-failure rate of 1e-6 over all coordinates, and the whitened squared error
``e^T Cov^{-1} e = N (||e||^2 - (g . e)^2 / (2 ||g||^2)) / ||g||^2`` (``e = m - g``; the mean of
the whitened z^2 times the dimension) against chi-square quantiles at 5e-7 on each side (a wrong
variance formula, e.g. twice the variance, moves it far outside). Activity and node perturbation
draw one direction per example: the same formula per example with ``g = delta_i`` (all of example
i's ``dL/dz_l``), examples independent, so the whitened sums add up over the batch.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error
from scipy import stats

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.rules import layered
from fa_jax.rules import perturbation as pt
from fa_jax.rules import reference_perturbation as ref

TOL = dict(rtol=1e-10, atol=1e-13)
N = 4096  # directions (or draws) of the statistical tests
ALPHA = 1e-6  # their false-failure rate, per check


def _setup(keys, sizes=(5, 7, 6, 3), activation="relu", batch=6):
    k1, k2, k3 = keys(3)
    model = fj.mlp(list(sizes), activation=activation)
    params = model.init(k1, jnp.float64)
    x = jax.random.normal(k2, (batch, sizes[0]), jnp.float64)
    y = jax.random.randint(k3, (batch,), 0, sizes[-1])
    return model, params, fj.rules.Batch(x, y, fj.losses.softmax_ce)


def _np(tree):
    return jax.tree.map(np.asarray, tree)


def _check_mean(mean, g, n):
    """The z and chi-square checks (module doc) of ``mean`` (rows: independent groups, e.g. examples,
    each with covariance ``(||g_r||^2 I + g_r g_r^T) / n``) against ``g``, both (groups, dim)."""
    e, a = mean - g, (g ** 2).sum(1, keepdims=True)
    z = e / np.sqrt((a + g ** 2) / n)
    assert np.abs(z).max() < stats.norm.isf(ALPHA / (2 * z.size)), np.abs(z).max()
    white = (n * ((e ** 2).sum(1) - (g * e).sum(1) ** 2 / (2 * a[:, 0])) / a[:, 0]).sum()
    assert stats.chi2.ppf(ALPHA / 2, z.size) < white < stats.chi2.isf(ALPHA / 2, z.size), (white, z.size)
    return z


def _flat(tree):
    return np.concatenate([np.ravel(v) for v in jax.tree.leaves(tree)])


# -- each estimate is its formula --------------------------------------------------------------------

CONV = ["conv(3,3)", "relu", "conv_transpose(2,3,2)", "tanh", "maxpool(2)", "flatten", "dense(3)"]


def _conv_setup(keys):
    k1, k2, k3 = keys(3)
    model = fj.cnn.sequential((5, 5, 2), CONV)
    params = model.init(k1, jnp.float64)
    x = jax.random.normal(k2, (4, 5, 5, 2), jnp.float64)
    return model, params, fj.rules.Batch(x, jax.random.randint(k3, (4,), 0, 3), fj.losses.softmax_ce)


def _compiled(rule, estimate, model, params, batch, key):
    """``(estimate(params, key), the rule's update, its value, its metrics, BP's loss and gradient)``,
    one compiled call."""
    objective = fj.rules.get(rule).objective

    def run(p, k):
        (value, aux), update = jax.value_and_grad(lambda q: objective(model, q, batch, None, k), has_aux=True)(p)
        bp = jax.value_and_grad(lambda q: batch.loss(model.apply(q, batch.x), batch.y))(p)
        return estimate(p, k), update, value, aux.metrics, bp

    return jax.jit(run)(params, key)


def test_fg_weight_on_a_conv_net_is_the_directional_derivative_times_the_direction(x64, keys):
    """Forward mode through fa_jax's convs (a custom_vjp) by their bilinear tangent (an MLP: the
    convergence test below checks the same formula, exactly, for every one of its directions)."""
    model, params, batch = _conv_setup(keys)
    e, update, value, metrics, (loss, g) = _compiled(
        "fg(n=3)", lambda p, k: pt.fg_weight(model, p, batch, k, 3), model, params, batch, keys(4)[3])
    for j in range(3):
        v = jax.tree.map(lambda a, j=j: a[j], e.directions)
        np.testing.assert_allclose(e.d[j], _flat(g) @ _flat(v), **TOL)
    want = jax.tree.map(lambda v: np.einsum("j,j...->...", e.d, v) / 3, e.directions)
    chex.assert_trees_all_close(e.update, want, **TOL)
    chex.assert_trees_all_close(update, want, **TOL)
    np.testing.assert_allclose(value, loss, **TOL)
    np.testing.assert_allclose(metrics["fg_directional_derivative"], np.abs(e.d).mean(), **TOL)


def _bp_deltas(model, params, batch, zs, key=None):
    """``(BP's dL/dz_l of every map (reverse mode), (logits, [z_l]))`` through layered's forward,
    dropout keyed by ``key``."""

    def loss(shifts):
        def wire(layers, ps, h):
            zz = []
            for layer, p, s in zip(layers, ps, shifts):
                op = layered.Shifted(s)
                h = layer(p, h, op)
                zz.append(op.z)
            return h, zz

        logits, _, zz = layered.forward(model, params, batch.x, wire, key=key)
        return batch.loss(logits, batch.y), (logits, zz)

    return jax.grad(loss, has_aux=True)([jnp.zeros_like(z) for z in zs])


def test_fg_activity_on_a_conv_net_is_bp_deltas_along_the_directions(x64, keys):
    """d_ji = B sum_l delta_l,i . u_jl,i with BP's deltas (reverse mode) of every map, convs included."""
    model, params, batch = _conv_setup(keys)

    def estimate(p, k):
        e = pt.fg_activity(model, p, batch, k, 2)
        return e, _bp_deltas(model, params, batch, e.zs)[0]

    (e, ds), update, *_ = _compiled("fg(kind=activity;n=2)", estimate, model, params, batch, keys(4)[3])
    flat = [(np.reshape(dl, (4, -1)), np.reshape(u, (2, 4, -1))) for dl, u in zip(ds, e.directions)]
    want = 4 * sum(np.einsum("ik,jik->ji", dl, u) for dl, u in flat)
    np.testing.assert_allclose(e.d, want, **TOL)
    for g, u in zip(e.update, e.directions):
        np.testing.assert_allclose(g, np.einsum("ji,ji...->i...", want, u) / 2 / 4, **TOL)
    assert np.isfinite(_flat(update)).all()


def test_node_pert_is_the_finite_difference_by_hand(x64, keys):
    model, params, batch = _setup(keys)
    e, update, value, metrics, (loss, _) = _compiled(
        "node_pert(sigma=1e-2)", lambda p, k: pt.node_perturbation(model, p, batch, k, 1e-2), model, params,
        batch, keys(4)[3])
    want, d = ref.node_pert_update(_np(params), batch.x, batch.y, e.directions, 1e-2)
    np.testing.assert_allclose(e.d, d, **TOL)
    chex.assert_trees_all_close(update, want, **TOL)
    np.testing.assert_allclose(value, loss, **TOL)
    np.testing.assert_allclose(metrics["node_pert_directional_derivative"], np.abs(d).mean(), **TOL)


def test_node_pert_approaches_its_linearisation_like_sigma(x64, keys):
    """The same xi for every sigma (drawn from the key alone): |d(sigma) - delta . xi| ~ sigma, d the
    per-example loss change over sigma (g_z = d xi / B, so the estimates' distance scales alike)."""
    model, params, batch = _setup(keys, activation="tanh")
    sigmas = jnp.array([1e-2, 1e-3, 1e-4])
    e = jax.jit(jax.vmap(lambda s: pt.node_perturbation(model, params, batch, keys(4)[3], s)))(sigmas)
    xis = [xi[0] for xi in e.directions]
    _, lin = ref.activity_update(_np(params), batch.x, batch.y, [xi[None] for xi in xis], "tanh")
    errs = np.linalg.norm(e.d - lin, axis=1)
    assert 7 < errs[0] / errs[1] < 14 and 7 < errs[1] / errs[2] < 14, errs


# -- the mean over many directions is BP's gradient, within the predicted variance ------------------

def test_fg_weight_is_its_formula_and_its_mean_converges_to_bp_with_the_predicted_variance(x64, keys):
    """N directions in one compiled call: every d_j = grad L . v_j, the update mean_j d_j v_j (the
    estimator's and the rule's), and that mean against BP within the predicted variance."""
    model, params, batch = _setup(keys, sizes=(8, 20, 6), batch=8)  # 326 params
    e, update, value, metrics, (loss, g) = _compiled(
        f"fg(n={N})", lambda p, k: pt.fg_weight(model, p, batch, k, N), model, params, batch, keys(4)[3])
    v = np.concatenate([np.reshape(a, (N, -1)) for a in jax.tree.leaves(e.directions)], 1)
    np.testing.assert_allclose(e.d, v @ _flat(g), **TOL)
    want = jax.tree.map(lambda a: np.einsum("j,j...->...", e.d, a) / N, e.directions)
    chex.assert_trees_all_close(e.update, want, **TOL)
    chex.assert_trees_all_close(update, want, **TOL)
    np.testing.assert_allclose(value, loss, **TOL)
    np.testing.assert_allclose(metrics["fg_directional_derivative"], np.abs(e.d).mean(), **TOL)
    _check_mean(_flat(e.update)[None], _flat(g)[None], N)


def _deltas_per_example(params, batch):
    return np.concatenate(ref.deltas(_np(params), batch.x, batch.y), axis=1)  # (B, all units)


def test_fg_activity_is_the_hand_formula_and_its_mean_converges_to_bp_deltas(x64, keys):
    """N directions in one compiled call: d and the update (the estimator's g_z, the rule's weights)
    against the numpy reference's formula, the mean g_z against BP's deltas within the predicted
    variance (relu; tanh's reference: the node_pert linearisation test)."""
    model, params, batch = _setup(keys, sizes=(6, 12, 10, 4), batch=8)
    e, update, value, metrics, (loss, _) = _compiled(
        f"fg(kind=activity;n={N})", lambda p, k: pt.fg_activity(model, p, batch, k, N), model, params, batch,
        keys(4)[3])
    want, d = ref.activity_update(_np(params), batch.x, batch.y, e.directions)
    np.testing.assert_allclose(e.d, d, **TOL)
    chex.assert_trees_all_close(update, want, **TOL)
    np.testing.assert_allclose(value, loss, **TOL)
    np.testing.assert_allclose(metrics["fg_directional_derivative"], np.abs(d).mean(), **TOL)
    assert all(np.abs(w["w"]).max() > 1e-4 for w in want)
    _check_mean(np.concatenate(e.update, axis=1), _deltas_per_example(params, batch), N)


def test_node_pert_mean_converges_to_bp_deltas_with_the_predicted_variance(x64, keys):
    """sigma = 1e-5: the bias of a draw is O(sigma), of the mean O(sigma^2), far below its noise."""
    model, params, batch = _setup(keys, sizes=(6, 12, 10, 4), batch=8)
    draw = jax.vmap(lambda k: jnp.concatenate(pt.node_perturbation(model, params, batch, k, 1e-5).update, axis=1))
    mean = jax.jit(lambda k: draw(jax.random.split(k, N)).mean(0))(keys(4)[3])
    _check_mean(np.asarray(mean), _deltas_per_example(params, batch), N)


# -- models: finite updates other than BP's, under jit and vmap over seeds --------------------------

RULES = ["fg", "fg(kind=activity;n=2)", "node_pert"]


class _Flax(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(jnp.tanh(nn.Dense(6)(x)))


def _models():
    """{name: (model, input shape, rules)}: fg with local losses where it runs (weight only with batch
    norm). A plain fj.mlp runs every rule in the (jitted) exactness tests above; here the same MLP
    carries dropout."""
    return {"dropout_mlp": (fj.norm_mlp([5, 8, 3], dropout=0.3), (5,), [*RULES, "fg(local=predsim)"]),
            "batch_norm_mlp": (fj.norm_mlp([5, 8, 3], norm="batch"), (5,), ["fg", "fg(local=pred)"]),
            "lecture_cnn": (fj.cnn.get("lecture_cnn", (8, 8, 1), 3, width=0.25), (8, 8, 1),
                            [*RULES, "fg(kind=activity;local=predsim)"]),
            "flax": (fj.from_flax(_Flax(), (5,)), (5,), ["fg"])}


def _blocks(tree):
    """A params-shaped tree without the local heads (fg with local losses adds them)."""
    return [{k: v for k, v in p.items() if k != "head"} for p in tree] if isinstance(tree, list) else tree


@pytest.mark.parametrize("name", ["dropout_mlp", "batch_norm_mlp", "lecture_cnn", "flax"])
def test_updates_are_finite_and_not_bp_under_jit_and_vmap(keys, name):
    """Two seeds in one compiled, vmapped call; a batch-norm model's new statistics are BP's."""
    model, shape, rules = _models()[name]
    x = jax.random.normal(keys(1)[0], (4, *shape))
    stats = model.init_stats() if fj.models.contract.is_stateful(model) else None
    batch = fj.rules.Batch(x, jnp.arange(4) % 3, fj.losses.softmax_ce, stats)

    def all_updates(key):
        k1, k2 = jax.random.split(key)
        params = model.init(k1)

        def grad(spec):
            rule = fj.rules.get(spec)
            p = params if rule.init_params is None else rule.init_params(k1, model, params)
            return jax.grad(lambda q: rule.train_objective(model, q, batch, None, k2), has_aux=True)(p)

        return grad("bp"), [grad(r) for r in rules]

    (bp, bp_aux), ups = jax.jit(jax.vmap(all_updates))(jnp.stack(keys(3)[1:]))
    for r, (u, aux) in zip(rules, ups):
        fj.rules.check_model(r, model)
        assert all(np.isfinite(a).all() for a in jax.tree.leaves(u)), r
        chex.assert_trees_all_close(aux.stats, bp_aux.stats, rtol=1e-5, atol=1e-6)
        assert np.isfinite(list(aux.metrics.values())).all() and aux.metrics, r
        if "local" in r:
            assert set(aux.metrics) >= {"fg_directional_derivative", "local_loss"}, r
            assert all("head" in p for p in u[:-1]) and "head" not in u[-1], r
        for seed in range(2):
            a, b = (_flat(jax.tree.map(lambda t, s=seed: t[s], _blocks(t))) for t in (u, bp))
            assert not np.allclose(a, b, rtol=1e-2), (r, seed)


def test_dropout_keeps_one_mask_for_every_pass(x64, keys):
    """Dropout is on (the train-mode clean logits are not eval mode's). node_pert: a mask redrawn for
    the noisy pass would change the loss by O(1), d ~ 1 / sigma. fg(kind=activity): its clean pass is
    layered's forward with the model key's masks, and d is BP's deltas through that same pass along u."""
    model = fj.norm_mlp([5, 16, 3], dropout=0.5)
    params = model.init(keys(1)[0], jnp.float64)
    batch = fj.rules.Batch(jax.random.normal(keys(2)[1], (8, 5), jnp.float64), jnp.arange(8) % 3, fj.losses.softmax_ce)

    def run(k):
        a = pt.fg_activity(model, params, batch, k, 2)
        return (pt.node_perturbation(model, params, batch, k, 1e-8), model.apply(params, batch.x), a,
                _bp_deltas(model, params, batch, a.zs, jax.random.split(k)[1]))

    e, eval_logits, a, (ds, (logits, zs)) = jax.jit(run)(keys(3)[2])
    assert np.abs(e.d).max() < 100, np.abs(e.d).max()
    assert not np.allclose(e.logits, eval_logits, rtol=1e-3)
    np.testing.assert_array_equal(a.logits, logits)
    np.testing.assert_allclose(e.logits, logits, **TOL)
    for z, zz in zip(a.zs, zs):
        np.testing.assert_array_equal(z, zz)
    want = 8 * sum(np.einsum("ik,jik->ji", dl, u) for dl, u in zip(ds, a.directions))
    np.testing.assert_allclose(a.d, want, **TOL)


class _NoMapFirst:
    """A layered model whose first layer runs no weighted map."""

    n_in, n_out = 3, 3
    layers = [lambda p, h, op: jnp.tanh(h), lambda p, h, op: op(h, p["w"], p["b"])]

    def init(self, key, dtype=jnp.float32):
        return [{}, {"w": jax.random.normal(key, (3, 3), dtype), "b": jnp.zeros(3, dtype)}]

    def apply(self, params, x, *, rule="bp", feedback=None, **kw):
        return fj.rules.get(rule).apply_layers(self.layers, params, x, feedback)


def test_a_shifted_op_runs_one_map_and_the_map_rules_need_one_per_layer(keys):
    op = layered.Shifted(jnp.ones((2, 3)))
    h, w, b = jnp.ones((2, 4)), jnp.full((4, 3), 0.5), jnp.arange(3.0)
    op(h, w, b)
    one_line_error(lambda: op(h, w, b), "two weighted maps through one Shifted op", InputError)
    one_line_error(lambda: layered.Shifted().output(1), "layer 1 of this model ran no weighted map", InputError)
    model = _NoMapFirst()
    batch = fj.rules.Batch(jnp.ones((4, 3)), jnp.arange(4) % 3, fj.losses.softmax_ce)
    for rule in ("fg(kind=activity)", "node_pert"):
        objective = fj.rules.get(rule).train_objective
        one_line_error(lambda o=objective: jax.eval_shape(lambda p: o(model, p, batch, None, keys(1)[0]),
                                                          model.init(keys(1)[0])),
                       "layer 0 of this model ran no weighted map", InputError)
    jax.eval_shape(lambda p: fj.rules.get("fg").train_objective(model, p, batch, None, keys(1)[0]),
                   model.init(keys(1)[0]))  # weight perturbation reads no z_l


# -- options, refusals, a sweep that learns ----------------------------------------------------------

def test_options_and_their_one_line_errors():
    assert fj.rules.get("fg(kind=activity, n=4)").name == "fg(kind=activity;n=4)"
    assert fj.rules.get("fg(kind=weight)").name == "fg" and fj.rules.get("node_pert(sigma=1e-3)").name == "node_pert"
    assert dict(fj.rules.get("node_pert(sigma=0.01)").options) == {"sigma": 0.01}
    assert fj.RULES["fg"].family is fj.rules.Family.FORWARD
    one_line_error(lambda: fj.rules.get("fg(kind=node)"), "unknown fg option kind 'node'; known: weight, activity")
    one_line_error(lambda: fj.rules.get("fg(n=0)"), "fg: n must be a positive int, got 0")
    one_line_error(lambda: fj.rules.get("fg(n=1.5)"), "fg: n must be a positive int, got 1.5")
    one_line_error(lambda: fj.rules.get("node_pert(sigma=0)"), "node_pert: sigma must be")
    one_line_error(lambda: fj.rules.get("node_pert(sigma=-1e-3)"), "got -0.001")
    one_line_error(lambda: fj.rules.get("node_pert(n=2)"), "rule 'node_pert' has no option 'n'; its options: sigma")


def test_models_the_map_rules_cannot_run_are_refused_before_compiling():
    flax_model = fj.from_flax(_Flax(), (5,))
    fj.rules.check_model("fg", flax_model)
    fj.rules.check_model("fg", fj.norm_mlp([5, 8, 3], norm="batch"))
    for rule in ("fg(kind=activity)", "node_pert(sigma=0.01)"):
        one_line_error(lambda r=rule: fj.rules.check_model(r, flax_model), f"rule {rule!r} runs a model block by block")
        one_line_error(lambda r=rule: fj.rules.check_model(r, fj.norm_mlp([5, 8, 3], norm="layer")),
                       "params ['scale', 'shift'] of this model would get no update")
        one_line_error(lambda r=rule: fj.rules.check_model(r, fj.mlp([5, 8, 3], activation="prelu")), "'alpha'")
    task = fj.data.parity(5, 2, n_train=32, n_test=32)
    one_line_error(lambda: fj.sweep(flax_model, task, rule="node_pert", steps=2, eval_every=1, progress=False),
                   "needs a layered model")


def test_fg_activity_learns_digits():
    task = fj.data.images("digits", limit=512, test_limit=256)
    model = fj.cnn.sequential((8, 8, 1), ["flatten", "dense(32)", "relu", "dense(10)"])
    res = fj.sweep(model, task, rule="fg(kind=activity)", seeds=2, steps=200, batch_size=32, eval_every=200,
                   lr=3e-3, progress=False)
    assert (res.test_acc[:, -1] > 0.5).all(), res.test_acc  # chance: 0.1
    assert np.isfinite(res.rule_metrics["fg_directional_derivative"]).all()
