"""Exactness of the BP / FA / DFA wirings (float64), against identities and fa_jax.rules.reference."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.rules import reference

TOL = dict(rtol=1e-11, atol=1e-13)


def _data(key, n, d, n_out=1, dtype=jnp.float64):
    kx, ky = jax.random.split(key)
    x = jax.random.normal(kx, (n, d), dtype)
    y = jax.random.rademacher(ky, (n,), dtype) if n_out == 1 else jax.random.randint(ky, (n,), 0, n_out)
    return x, y


def _grads(model, params, x, y, rule, fb, loss="bce", jit=False):
    f = lambda p: fj.losses.get(loss)(model.apply(p, x, rule=rule, feedback=fb), y)
    g = jax.grad(f)
    return (jax.jit(g) if jit else g)(params)


@pytest.mark.parametrize("jit", [False, True])
def test_fa_with_B_equal_W_is_bp_on_a_deep_net(x64, keys, jit):
    k1, k2 = keys(2)
    model = fj.mlp([7, 9, 8, 6, 5, 3], activation="tanh", init="glorot_normal")
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, 11, 7, 3)
    fb = [p["w"] for p in params]
    chex.assert_trees_all_close(_grads(model, params, x, y, "fa", fb, "softmax_ce", jit),
                                _grads(model, params, x, y, "bp", None, "softmax_ce", jit), **TOL)


def test_fa_with_random_B_differs_from_bp(x64, keys):
    k1, k2, k3 = keys(3)
    model = fj.mlp([5, 8, 8, 1], activation="tanh")
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, 10, 5)
    g_fa = _grads(model, params, x, y, "fa", fj.init_feedback(k3, model, "fa", dtype=jnp.float64))
    g_bp = _grads(model, params, x, y, "bp", None)
    assert not np.allclose(g_fa[0]["w"], g_bp[0]["w"])
    np.testing.assert_allclose(g_fa[-1]["w"], g_bp[-1]["w"], **TOL)  # output layer: true gradient


@pytest.mark.parametrize("jit", [False, True])
def test_dfa_one_hidden_layer_with_B_equal_W2T_is_bp(x64, keys, jit):
    k1, k2 = keys(2)
    model = fj.mlp([6, 10, 4], activation="relu")
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, 13, 6, 4)
    fb = [params[1]["w"].T]
    chex.assert_trees_all_close(_grads(model, params, x, y, "dfa", fb, "softmax_ce", jit),
                                _grads(model, params, x, y, "bp", None, "softmax_ce", jit), **TOL)


def test_fa_and_dfa_coincide_on_one_hidden_layer(x64, keys):
    k1, k2, k3 = keys(3)
    model = fj.mlp([6, 10, 1], activation="sigmoid")
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, 9, 6)
    B2 = jax.random.normal(k3, (10, 1), jnp.float64)  # shaped like W_2
    fa_fb = [jnp.zeros((6, 10), jnp.float64), B2]     # B_1 is never used (nothing below the input)
    chex.assert_trees_all_close(_grads(model, params, x, y, "fa", fa_fb),
                                _grads(model, params, x, y, "dfa", [B2.T]), **TOL)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_three_hidden_layers_match_numpy_reference(x64, keys, activation):
    k1, k2, k3 = keys(3)
    model = fj.mlp([8, 12, 10, 9, 1], activation=activation, init="glorot_uniform")
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, 16, 8)
    fb = fj.init_feedback(k3, model, "dfa", dist="normal", dtype=jnp.float64)
    y01 = (np.asarray(y) + 1) / 2
    np_params = jax.tree.map(np.asarray, params)
    ref_dfa = reference.dfa_grads(np_params, np.asarray(x), y01, fb, activation)
    ref_bp = reference.bp_grads(np_params, np.asarray(x), y01, activation)
    for got, want in ((_grads(model, params, x, y, "dfa", fb), ref_dfa), (_grads(model, params, x, y, "bp", None), ref_bp)):
        for g, r in zip(got, want):
            np.testing.assert_allclose(g["w"], r["w"], **TOL)
            np.testing.assert_allclose(g["b"], r["b"], **TOL)
    loss = fj.losses.bce(model.apply(params, x), y)
    assert abs(float(loss) - reference.bce_loss(np_params, np.asarray(x), y01, activation)) < 1e-12


@pytest.mark.parametrize("rule,activation", [("fa", "relu"), ("kp", "tanh"), ("wm", "relu")])
def test_rules_that_send_delta_through_their_B_match_the_fa_formula(x64, keys, rule, activation):
    """fa, kp and wm: at the current B (kp's and wm's evolve between steps) the gradients are FA's."""
    k1, k2, k3 = keys(3)
    model = fj.mlp([8, 12, 10, 9, 1], activation=activation)
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, 16, 8)
    fb = fj.init_feedback(k3, model, rule, dtype=jnp.float64)
    p = jax.tree.map(np.asarray, params)
    want = reference.fa_grads(p, np.asarray(x), (np.asarray(y) + 1) / 2, [np.asarray(B) for B in fb], activation)
    for g, r in zip(_grads(model, params, x, y, rule, fb), want):
        np.testing.assert_allclose(g["w"], r["w"], **TOL)
        np.testing.assert_allclose(g["b"], r["b"], **TOL)


def test_dfa_signal_is_one_matmul_of_the_output_error(x64, keys):
    """d loss / d h_l under DFA is exactly e @ B_l, e = dL/dy (seen through the hidden layer's bias grad)."""
    k1, k2, k3 = keys(3)
    model = fj.mlp([5, 7, 6, 3], activation="identity")
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, 4, 5, 3)
    fb = fj.init_feedback(k3, model, "dfa", dtype=jnp.float64)
    y_out = model.apply(params, x)
    e = jax.grad(lambda z: fj.losses.softmax_ce(z, y))(y_out)
    g = _grads(model, params, x, y, "dfa", fb, "softmax_ce")
    for l in range(2):  # identity activation: db_l = sum_n (e @ B_l)
        np.testing.assert_allclose(g[l]["b"], (e @ fb[l]).sum(0), **TOL)


def test_rules_vmap_over_seeds(keys):
    k1, k2 = keys(2)
    model = fj.mlp([4, 8, 8, 2])
    x, y = _data(k2, 6, 4, 2, jnp.float32)
    seeds = jax.random.split(k1, 3)

    def g(k):
        p = model.init(k)
        fb = fj.init_feedback(jax.random.fold_in(k, 1), model, "dfa")
        return _grads(model, p, x, y, "dfa", fb, "softmax_ce")

    batched = jax.jit(jax.vmap(g))(seeds)
    for i in range(3):
        chex.assert_trees_all_close(jax.tree.map(lambda a: a[i], batched), jax.jit(g)(seeds[i]), rtol=1e-5, atol=1e-6)


def test_registry_and_feedback_errors(keys):
    model = fj.mlp([4, 8, 1])
    params = model.init(keys(1)[0])
    x = jnp.ones((2, 4))
    with pytest.raises(ValueError, match=r"unknown rule 'dfaa'; known: bp, "):
        model.apply(params, x, rule="dfaa")
    with pytest.raises(ValueError, match="needs feedback"):
        model.apply(params, x, rule="dfa")
    with pytest.raises(ValueError, match=r"feedback\[0\] has shape \(8, 1\), expected \(1, 8\)"):
        model.apply(params, x, rule="dfa", feedback=[jnp.ones((8, 1))])
    with pytest.raises(ValueError, match="list of 2 feedback"):
        model.apply(params, x, rule="fa", feedback=[jnp.ones((4, 8))])
    with pytest.raises(ValueError, match="input has 3 features"):
        model.apply(params, jnp.ones((2, 3)))
    assert fj.init_feedback(keys(1)[0], model, "bp") is None


def test_register_a_new_rule():
    """A new rule is one wiring function plus one entry."""
    def sign_bp(layers, params, x, feedback):
        return fj.rules.bp(layers, params, x, feedback)

    fj.register(fj.Rule("test_sign_bp", sign_bp))
    try:
        model = fj.mlp([3, 4, 1])
        p = model.init(jax.random.key(0))
        assert model.apply(p, jnp.ones((2, 3)), rule="test_sign_bp").shape == (2, 1)
    finally:
        del fj.RULES["test_sign_bp"]
