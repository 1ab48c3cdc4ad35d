"""Sign-concordant FA (usf, frsf, brsf), float64: hand formulas of fa_jax.rules.reference, the BP
identities, the B the diagnostics measure, brsf's per-step redraw, and sweeps on mlp / norm_mlp."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg
from fa_jax.rules import reference

TOL = dict(rtol=1e-11, atol=1e-13)
SIGN = ["usf", "frsf", "brsf"]


def _setup(keys, rule, activation="tanh"):
    k1, k2, k3, k4 = keys(4)
    model = fj.mlp([8, 12, 10, 9, 1], activation=activation, init="glorot_uniform")
    params = model.init(k1, jnp.float64)
    x = jax.random.normal(k2, (16, 8), jnp.float64)
    y = jax.random.rademacher(k3, (16,), jnp.float64)
    return model, params, x, y, fj.init_feedback(k4, model, rule, dtype=jnp.float64)


def _grads(model, params, x, y, rule, fb):
    return jax.grad(lambda p: fj.losses.bce(model.apply(p, x, rule=rule, feedback=fb), y))(params)


def _np(tree):
    return jax.tree.map(np.asarray, tree)


@pytest.mark.parametrize("rule", SIGN)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_three_hidden_layers_match_the_hand_formula(x64, keys, rule, activation):
    model, params, x, y, fb = _setup(keys, rule, activation)
    p = _np(params)
    bs = reference.usf_matrices(p) if rule == "usf" else reference.rsf_matrices(p, _np(fb))
    want = reference.fa_grads(p, np.asarray(x), (np.asarray(y) + 1) / 2, bs, activation)
    got = _grads(model, params, x, y, rule, fb)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g["w"], r["w"], **TOL)
        np.testing.assert_allclose(g["b"], r["b"], **TOL)
    assert not np.allclose(got[0]["w"], reference.bp_grads(p, np.asarray(x), (np.asarray(y) + 1) / 2,
                                                           activation)[0]["w"])


@pytest.mark.parametrize("rule", ["frsf", "brsf"])
def test_magnitudes_equal_to_abs_w_are_bp(x64, keys, rule):
    model, params, x, y, _ = _setup(keys, rule)
    fb = [jnp.abs(p["w"]) for p in params]
    chex.assert_trees_all_close(_grads(model, params, x, y, rule, fb), _grads(model, params, x, y, "bp", None), **TOL)


def test_usf_on_weights_of_plus_minus_s_is_bp(x64, keys):
    model, params, x, y, _ = _setup(keys, "usf")
    params = [{**p, "w": jnp.sign(p["w"]) / np.sqrt(p["w"].shape[0])} for p in params]
    chex.assert_trees_all_close(_grads(model, params, x, y, "usf", None), _grads(model, params, x, y, "bp", None), **TOL)


def test_frsf_with_abs_kernel_is_bp_on_a_conv_net(x64, keys):
    """The conv FA path (fa_apply) takes the sign-derived B of a kernel like a dense layer's."""
    model = fj.cnn.sequential((6, 6, 2), ["conv(3,3)", "tanh", "flatten", "dense(3)"])
    k1, k2 = keys(2)
    params = model.init(k1, jnp.float64)
    x, y = jax.random.normal(k2, (4, 6, 6, 2), jnp.float64), jnp.arange(4) % 3

    def g(rule, fb):
        return jax.grad(lambda p, x_: fj.losses.softmax_ce(model.apply(p, x_, rule=rule, feedback=fb), y),
                        argnums=(0, 1))(params, x)

    chex.assert_trees_all_close(g("frsf", [jnp.abs(p["w"]) for p in params]), g("bp", None), **TOL)


@pytest.mark.parametrize("rule", SIGN)
def test_weight_alignment_uses_the_sign_derived_B(x64, keys, rule):
    model, params, x, y, fb = _setup(keys, rule)
    p = _np(params)
    bs = reference.usf_matrices(p) if rule == "usf" else reference.rsf_matrices(p, _np(fb))
    out = dg.diagnose(model, rule, fj.losses.bce, params, fb, x, y)
    want = [np.degrees(np.arccos(np.sum(w["w"] * B) / np.linalg.norm(w["w"]) / np.linalg.norm(B)))
            for w, B in zip(p[1:], bs[1:])]
    np.testing.assert_allclose(out["weight_alignment_deg"], want, atol=1e-9)
    assert out["grad_alignment_deg"].shape == (4,) and out["signal_alignment_deg"].shape == (3,)
    assert 0 < float(out["grad_alignment_deg"][0]) < 90


def test_brsf_redraws_its_magnitudes_every_step(keys):
    """Through the train step: M changes at every step, from the step's key (so seeds differ),
    as U(-a, a) with a = sqrt(3 / fan_in)."""
    model, task = fj.mlp([8, 64, 64, 1]), fj.data.parity(8, 2)
    tx = fj.optimizer("sgd", 0.1)
    step = jax.jit(fj.make_train_step(model, "brsf", fj.losses.bce, tx, 16))
    s0 = fj.training.state.init_state(keys(1)[0], model, "brsf", tx)
    s1, _ = step(s0, task)
    s2, _ = step(s1, task)
    for a, b, c in zip(s0.feedback, s1.feedback, s2.feedback):
        assert not np.allclose(a, b) and not np.allclose(b, c)
        bound = np.sqrt(3.0 / a.shape[0])
        assert np.abs(c).max() <= bound and np.abs(c).max() > 0.8 * bound


@pytest.mark.parametrize("rule", SIGN)
def test_sweeps_train_mlp_and_norm_mlp(rule):
    task = fj.data.parity(8, 2)
    kw = dict(rule=rule, seeds=2, steps=20, batch_size=16, eval_every=10, progress=False)
    for model in (fj.mlp([8, 16, 16, 1]), fj.norm_mlp([8, 16, 16, 1], norm="layer", dropout=0.1)):
        res = fj.sweep(model, task, diagnostics=True, **kw)
        assert res.test_acc.shape == (2, 2) and np.isfinite(res.loss).all()
        assert res.diagnostics["weight_alignment_deg"].shape == (2, 2, 2)
