"""fa_jax.analysis.estimators: the cosine of averaged random updates to BP's gradient, against the
weight-perturbation formula, and its group bookkeeping."""

import jax
import jax.numpy as jnp
import numpy as np
from error_check import one_line_error

import fa_jax as fj
from fa_jax.analysis import estimators


def _weight_fg(model, params, batch, feedback, key):
    """(grad L . v) v with v ~ N(0, I) over every param, by one jvp (a forward gradient)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    v = tree.unflatten([jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)])
    loss = lambda p: batch.loss(model.apply(p, batch.x), batch.y)  # noqa: E731
    value, d = jax.jvp(loss, (params,), (v,))
    update = jax.tree.map(lambda a: d * a, v)
    return fj.rules.surrogate(value, update, params), fj.rules.Aux(model.apply(params, batch.x))


FG = fj.Rule("weight_fg_test", objective=_weight_fg, family="forward")


def test_averaged_weight_perturbation_follows_the_formula():
    model, task = fj.mlp([6, 8, 1]), fj.data.parity(6, 2)
    params = model.init(jax.random.key(0))
    x, y = task.sample(jax.random.key(1), 32)
    ns = [1, 8, 64]
    cos = estimators.cosines(model, FG, fj.losses.get(task.default_loss), params, x, y, jax.random.key(2), ns)
    assert [len(cos[n]) for n in ns] == [64, 8, 1]
    D = sum(a.size for a in jax.tree.leaves(params))  # 65 params
    # n = 1: the cosine is |cos(v, g)|, mean sqrt(2 / (pi D)) (a half-normal over sqrt(D)); 64 draws
    assert abs(cos[1].mean() - np.sqrt(2 / (np.pi * D))) < 0.04
    for n in (8, 64):  # averaged: near 1 / sqrt(1 + (D + 1) / n)
        assert abs(cos[n].mean() - estimators.weight_fg_cosine(D, n)) < 0.15, (n, cos[n].mean())
    assert (cos[1] > 0).all()  # (g.v) v always points into the half-space of g


def test_bp_itself_has_cosine_one_and_bad_group_sizes_are_refused():
    model, task = fj.mlp([6, 8, 1]), fj.data.parity(6, 2)
    params, loss = model.init(jax.random.key(0)), fj.losses.get(task.default_loss)
    x, y = task.sample(jax.random.key(1), 16)
    exact = fj.Rule("exact_test", objective=lambda m, p, b, f, k: (b.loss(m.apply(p, b.x), b.y),
                                                                     fj.rules.Aux(jnp.zeros(()))))
    c = estimators.cosines(model, exact, loss, params, x, y, jax.random.key(2), [1, 2])
    np.testing.assert_allclose(np.concatenate([c[1], c[2]]), 1.0, rtol=1e-5)
    one_line_error(lambda: estimators.cosines(model, exact, loss, params, x, y, jax.random.key(2), [3, 4]),
                   "each divide the largest")


def test_a_rules_extras_are_left_out_and_random_models_refused():
    model, task = fj.mlp([6, 8, 1]), fj.data.parity(6, 2)
    loss = fj.losses.get(task.default_loss)
    params = model.init(jax.random.key(0))
    with_extra = [{**params[0], "head": jnp.ones((8, 1))}, *params[1:]]
    x, y = task.sample(jax.random.key(1), 16)

    def objective(m, p, b, f, k):  # BP's loss plus a term of the extra alone: BP's update on the model's params
        return b.loss(m.apply(p, b.x), b.y) + jnp.sum(p[0]["head"] ** 2), fj.rules.Aux(jnp.zeros(()))

    headed = fj.Rule("headed_test", objective=objective)
    c = estimators.cosines(model, headed, loss, with_extra, x, y, jax.random.key(2), [1])
    np.testing.assert_allclose(c[1], 1.0, rtol=1e-5)
    one_line_error(lambda: estimators.cosines(fj.norm_mlp([6, 8, 1], dropout=0.5), headed, loss, params, x, y,
                                              jax.random.key(2), [1]), "without dropout or batch norm")
