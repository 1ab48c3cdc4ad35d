"""Lazy baselines: gradients vs hand formulas (float64), frozen parts never move and cost nothing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.training import compiles
from fa_jax.training import state as fj_state

LAZY = ["ntk", "ntk_copy", "rf_gaussian", "rf_relu", "rf_linear"]
RF_ACT = {"rf_gaussian": np.cos, "rf_relu": lambda a: np.maximum(a, 0), "rf_linear": lambda a: a}


def _setup(keys, rule, dtype=jnp.float64):
    k1, k2, k3, k4 = keys(4)
    model = fj.mlp([7, 12, 1])
    params = model.init(k1, dtype)
    frozen = fj.init_feedback(k2, model, rule, params=params, dtype=dtype)
    params = fj.rules.get(rule).trainable(params) if fj.rules.get(rule).trainable else params
    x = jax.random.normal(k3, (9, 7), dtype)
    y = jax.random.rademacher(k4, (9,), dtype)
    return model, params, frozen, x, y


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("rule", LAZY)
@pytest.mark.parametrize("jit", [False, True])
def test_gradients_equal_hand_derived_bp_on_the_method_graph(x64, keys, rule, jit):
    model, params, frozen, x, y = _setup(keys, rule)
    f = lambda p: fj.losses.bce(model.apply(p, x, rule=rule, feedback=frozen), y)
    grads = (jax.jit(jax.grad(f)) if jit else jax.grad(f))(params)
    X, Y = np.asarray(x), np.asarray(y)
    W0, b0 = np.asarray(frozen["w"]), np.asarray(frozen["b"])
    W2, b2 = np.asarray(params[1]["w"]), np.asarray(params[1]["b"])
    if rule.startswith("ntk"):
        gate = (X @ W0 + b0 > 0).astype(float)
        h = (X @ np.asarray(params[0]["w"]) + np.asarray(params[0]["b"])) * gate
    else:
        h = RF_ACT[rule](X @ W0 + b0)
    e = (_sigmoid(h @ W2 + b2) - (Y[:, None] + 1) / 2) / len(X)  # dL/dz of mean BCE
    np.testing.assert_allclose(grads[1]["w"], h.T @ e, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads[1]["b"], e.sum(0), rtol=1e-10, atol=1e-12)
    if rule.startswith("ntk"):
        delta = (e @ W2.T) * gate
        np.testing.assert_allclose(grads[0]["w"], X.T @ delta, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads[0]["b"], delta.sum(0), rtol=1e-10, atol=1e-12)
    else:
        assert grads[0] == {}  # no gradient for the frozen layer


def test_ntk_copy_starts_as_the_relu_network_and_ntk_gate_is_independent(x64, keys):
    model, params, frozen, x, _ = _setup(keys, "ntk_copy")
    np.testing.assert_allclose(model.apply(params, x, rule="ntk_copy", feedback=frozen), model.apply(params, x),
                               rtol=1e-12)
    _, p2, fr2, _, _ = _setup(keys, "ntk")
    assert not np.allclose(fr2["w"], p2[0]["w"]) and np.all(np.asarray(fr2["b"]) == 0)


def test_rf_gaussian_init_follows_the_authors_code(keys):
    model = fj.mlp([400, 2000, 1])
    fr = fj.init_feedback(keys(1)[0], model, "rf_gaussian")
    assert abs(float(fr["w"].std()) - 4 / np.sqrt(400)) < 0.01 * 4 / np.sqrt(400)
    assert 0 <= float(fr["b"].min()) and float(fr["b"].max()) <= 2 * np.pi and abs(float(fr["b"].mean()) - np.pi) < 0.2


def _assert_frozen_and_stateless(res, model, rule):
    keys = jax.vmap(jax.random.key)(jnp.asarray(res.seeds, jnp.uint32))
    draw = jax.jit(jax.vmap(lambda k: fj_state.init_state(k, model, rule, fj.optimizer("adam"))))
    init = compiles.compile_once_run(draw, keys)[0](keys)  # compiled as fj.sweep compiles its draws
    for a, b in zip(jax.tree.leaves(init.feedback), jax.tree.leaves(res.state.feedback)):
        assert np.array_equal(np.asarray(a), np.asarray(b))  # the gate / random features never change
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(init.params), jax.tree.leaves(res.state.params))]
    assert all(moved)  # every trainable leaf does change
    n_opt = sum(x.size for x in jax.tree.leaves(res.state.opt_state) if x.ndim > 1)
    n_par = sum(x.size for x in jax.tree.leaves(res.state.params))
    assert n_opt == 2 * n_par  # adam: mu and nu for the trainable params only
    if rule.startswith("rf_"):
        width = model.sizes[1]
        assert res.state.params[0] == {} and n_par == 2 * (width + 1)


def test_lazy_rules_mix_with_bp_and_frozen_parts_never_move(tmp_path):
    model, task = fj.mlp([6, 16, 1]), fj.data.parity(6, 2)
    rules = ["bp", "ntk", "rf_gaussian", "rf_linear"]
    res, rows, table = fj.compare_rules(fj.Study.start(tmp_path, {}), model, task, rules, seeds=2, steps=20,
                                       batch_size=8, eval_every=10, progress=False)
    assert [r["rule"] for r in rows] == [r for r in rules for _ in range(2)]
    assert "rf_linear" in table
    for rule in rules[1:]:
        _assert_frozen_and_stateless(res[rule], model, rule)


def test_bad_inputs_are_one_line_errors():
    deep = fj.mlp([6, 8, 8, 1])
    with pytest.raises(ValueError, match=r"rule 'rf_relu' needs a depth-two MLP .*sizes \[6, 8, 8, 1\]"):
        fj.sweep(deep, fj.data.parity(6, 2), rule="rf_relu", progress=False)
    with pytest.raises(ValueError, match=r"unknown rule 'ntk2'; known: .*ntk_copy.*rf_linear"):
        fj.rules.get("ntk2")
    with pytest.raises(ValueError, match=r"unknown ntk gate 'shared'; known: independent, copy"):
        fj.lazy.ntk_rule("shared")
    with pytest.raises(ValueError, match=r"'ntk_copy' copies the initial first layer: pass params="):
        fj.init_feedback(jax.random.key(0), fj.mlp([6, 8, 1]), "ntk_copy")
    with pytest.raises(ValueError, match=r"rule 'ntk' needs its frozen layer"):
        fj.mlp([6, 8, 1]).apply(fj.mlp([6, 8, 1]).init(jax.random.key(0)), jnp.ones((2, 6)), rule="ntk")


def test_diagnostics_refused_for_lazy_rules():
    import fa_jax as fj
    with pytest.raises(ValueError, match="rule 'rf_relu' trains a different"):
        fj.sweep(fj.mlp([8, 16, 1]), fj.data.parity(8, 2), rule="rf_relu", seeds=1, steps=10, eval_every=10,
                 diagnostics=True, progress=False)
