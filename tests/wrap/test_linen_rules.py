"""Every rule on wrapped linen models (float64): FA with B = W and DFA with B = W_out.T are BP; a linen
MLP / CNN equals the built-in fj.mlp / fj.cnn with the same weights and feedback under every rule
(gradients, and one train step of the evolving-feedback rules); the rules a wrapped model cannot run
are refused in one line."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from error_check import one_line_error
from linen_nets import (CNN, F64, IMAGE, MLP, N_OUT, RULES, SIZES, builtin_cnn, builtin_mlp, feedback_to_linen,
                        feedback_to_list, grads, images, params_to_linen, params_to_list, vectors, wrap)

import fa_jax as fj
from fa_jax.models.init import fans
from fa_jax.rules import core as rules_lib
from fa_jax.training.state import TrainState

TOL = dict(rtol=1e-10, atol=1e-12)


def _differs(a, b):
    assert not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-9)


# --- FA with B = W, DFA with B = W_out.T: BP ---------------------------------------------------------

@pytest.mark.parametrize("flatten", ["reshape", "general"])
def test_fa_with_B_equal_to_every_kernel_is_bp_on_a_linen_cnn(x64, keys, flatten):
    k1, k2, k3 = keys(3)
    model = wrap(CNN(flatten=flatten), IMAGE)
    assert [c[1] for c in model.calls] == ["Conv", "ConvTranspose", "Dense" if flatten == "reshape" else "DenseGeneral",
                                           "Dense"]
    params = model.init(k1)
    x, y = images(k2)
    fb = model.feedback_tree("fa", model.kernels(params))
    assert jax.tree.structure(fb) == jax.tree.structure(fj.init_feedback(k3, model, "fa", dtype=F64))
    g_bp = grads(model, params, x, y, "bp", None)
    chex.assert_trees_all_close(grads(model, params, x, y, "fa", fb), g_bp, **TOL)
    # a B that is not W changes every layer's gradient below the output layer, and only those
    g_fa = grads(model, params, x, y, "fa", fj.init_feedback(k3, model, "fa", dtype=F64))
    for path in model.kernel_paths[:-1]:
        _differs(g_fa[path[0]]["kernel"], g_bp[path[0]]["kernel"])
    out = model.kernel_paths[-1][0]
    chex.assert_trees_all_close(g_fa[out], g_bp[out], **TOL)


class PointCNN(nn.Module):
    """conv -> relu -> conv_transpose -> tanh -> DFAPoint -> flatten -> Dense: one point, (H, W, C)."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(3, (3, 3), strides=(2, 2), param_dtype=F64)(x))
        x = jnp.tanh(nn.ConvTranspose(2, (2, 2), param_dtype=F64)(x))
        x = fj.DFAPoint()(x)
        return nn.Dense(N_OUT, param_dtype=F64)(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("rule", ["dfa", "sdfa"])
def test_dfa_with_one_point_before_the_last_dense_and_B_equal_to_its_transpose_is_bp(x64, keys, rule):
    k1, k2, k3 = keys(3)
    model = wrap(PointCNN(), IMAGE)
    assert model.markers and model.points == (("DFAPoint_0", (2, 2, 2)),)
    params = model.init(k1)
    x, y = images(k2)
    w_out = params["Dense_0"]["kernel"]
    fb = {"DFAPoint_0": w_out.T.reshape(N_OUT, -1)}
    g_bp = grads(model, params, x, y, "bp", None)
    g = grads(model, params, x, y, rule, fb)
    if rule == "dfa":  # e @ W_out.T is dL/dh: every layer below the point gets BP's gradient
        chex.assert_trees_all_close(g, g_bp, **TOL)
    else:  # sign(e) @ W_out.T is not: only the output layer keeps its true gradient
        _differs(g["Conv_0"]["kernel"], g_bp["Conv_0"]["kernel"])
        chex.assert_trees_all_close(g["Dense_0"], g_bp["Dense_0"], **TOL)
    g_rand = grads(model, params, x, y, "dfa", fj.init_feedback(k3, model, "dfa", dtype=F64))
    _differs(g_rand["Conv_0"]["kernel"], g_bp["Conv_0"]["kernel"])


# --- a linen MLP is fj.mlp under every rule ------------------------------------------------------------

def _mlp_pair(key):
    builtin = builtin_mlp()
    model = wrap(MLP(), (SIZES[0],))
    assert model.weight_shapes == builtin.weight_shapes and model.hidden_shapes == builtin.hidden_shapes
    assert model.point_names == ["Dense_1", "Dense_2"]
    blist = builtin.init(key, F64)
    return builtin, model, blist, params_to_linen(model, blist)


def _same_gradients(builtin, model, blist, lparams, x, y, rule, key, lmodel=None):
    """The built-in's and the wrapped model's gradients under ``rule`` with the same feedback; returns them."""
    fbl = fj.init_feedback(key, builtin, rule, dtype=F64)
    lmodel = lmodel or model
    fb = feedback_to_linen(lmodel, rule, fbl)
    if fbl is not None:
        assert jax.tree.structure(fb) == jax.tree.structure(fj.init_feedback(key, lmodel, rule, dtype=F64))
    g_b = grads(builtin, blist, x, y, rule, fbl)
    g_l = params_to_list(lmodel, grads(lmodel, lparams, x, y, rule, fb), blist)
    chex.assert_trees_all_close(g_l, g_b, **TOL)
    return g_b


@pytest.mark.parametrize("rule", RULES)
def test_linen_mlp_equals_builtin_mlp(x64, keys, rule):
    k1, k2, k3 = keys(3)
    builtin, model, blist, lparams = _mlp_pair(k1)
    x, y = vectors(k2)
    g = _same_gradients(builtin, model, blist, lparams, x, y, rule, k3)
    if rule != "bp":  # the rule is not BP in disguise
        _differs(g[0]["w"], grads(builtin, blist, x, y, "bp", None)[0]["w"])


@pytest.mark.parametrize("rule", ["dfa", "sdfa", "drtp"])
def test_dfa_points_after_each_hidden_activation_equal_builtin_mlp(x64, keys, rule):
    k1, k2, k3 = keys(3)
    builtin, plain, blist, lparams = _mlp_pair(k1)
    model = wrap(MLP(markers=True), (SIZES[0],))
    assert model.markers and model.point_names == ["DFAPoint_0", "DFAPoint_1"]
    assert model.hidden_shapes == builtin.hidden_shapes and model.kernel_paths == plain.kernel_paths
    x, y = vectors(k2)
    _same_gradients(builtin, model, blist, lparams, x, y, rule, k3)


# --- a linen CNN is fj.cnn.sequential under every rule -----------------------------------------------------

def _cnn_pair(key, flatten):
    builtin = builtin_cnn()
    model = wrap(CNN(flatten=flatten), IMAGE)
    blist = builtin.init(key, F64)
    return builtin, model, blist, params_to_linen(model, blist)


def test_cnn_points_are_the_builtin_block_outputs(x64):
    builtin = builtin_cnn()
    assert builtin.hidden_shapes == [(4, 4, 4), (4, 4, 3), (6,)]
    general = wrap(CNN(flatten="general"), IMAGE)
    assert general.hidden_shapes == builtin.hidden_shapes  # DenseGeneral reads the (H, W, C) block output
    assert general.point_names == ["ConvTranspose_0", "DenseGeneral_0", "Dense_0"]
    # x.reshape then Dense: the point is the input of Dense_0, i.e. the flattened block output
    flat = wrap(CNN(flatten="reshape"), IMAGE)
    assert flat.hidden_shapes == [(4, 4, 4), (48,), (6,)]
    assert flat.weight_shapes == builtin.weight_shapes
    assert general.weight_shapes == [(3, 3, 2, 4), (3, 3, 4, 3), (4, 4, 3, 6), (6, 5)]


def test_flatten_order_matches(x64, keys):
    """The built-in's flatten (row-major, C fastest) is linen's reshape: the same logits under bp."""
    k1, k2 = keys(2)
    x, _ = images(k2)
    for flatten in ("reshape", "general"):
        builtin, model, blist, lparams = _cnn_pair(k1, flatten)
        np.testing.assert_allclose(model.apply(lparams, x), builtin.apply(blist, x), **TOL)


CONV_SHARED = ["dfa(conv=shared)", "sdfa(conv=shared)", "drtp(conv=shared)"]


@pytest.mark.parametrize("flatten,rule", [("reshape", r) for r in RULES] + [("general", r) for r in RULES + CONV_SHARED])
def test_linen_cnn_equals_builtin_cnn(x64, keys, flatten, rule):
    k1, k2, k3 = keys(3)
    builtin, model, blist, lparams = _cnn_pair(k1, flatten)
    x, y = images(k2)
    if rule in CONV_SHARED:
        fb = fj.init_feedback(k3, model, rule, dtype=F64)
        assert [B.shape for B in model.feedback_list(rule, fb)] == [(3, 3, N_OUT, 4), (3, 3, N_OUT, 3), (N_OUT, 6)]
    g = _same_gradients(builtin, model, blist, lparams, x, y, rule, k3)
    if rule != "bp":
        _differs(g[0]["w"], grads(builtin, blist, x, y, "bp", None)[0]["w"])


# --- evolving feedback: one train step of kp, wm and brsf equals the built-in's -----------------------------

def _step(model, rule, params, fb, task, steps=2):
    tx = optax.sgd(0.1, momentum=0.5)
    state = TrainState(params=params, opt_state=tx.init(params), feedback=fb, key=jax.random.key(7),
                       step=jnp.zeros((), jnp.int32), diverged_at=jnp.full((), -1, jnp.int32))
    step = fj.make_train_step(model, rule, fj.losses.softmax_ce, tx, 4)  # eager: compiles nothing whole
    for _ in range(steps):
        state, (loss, _, _) = step(state, task)
        assert np.isfinite(loss)
    return state


@pytest.mark.parametrize("net,rule", [("mlp", "kp(lam=0.9)"), ("mlp", "wm"), ("mlp", "brsf"),
                                      ("cnn", "kp(lam=0.9)"), ("cnn", "wm"), ("cnn", "brsf")])
def test_evolving_feedback_hooks_on_dict_feedback_equal_the_builtin(x64, keys, net, rule):
    k1, k2, k3 = keys(3)
    if net == "mlp":
        builtin, model, blist, lparams = _mlp_pair(k1)
        x, y = vectors(k2, 9)
    else:  # named so that the dict's sorted order is the call order: wm and brsf draw a key per layer in it
        builtin = builtin_cnn()
        model = wrap(CNN(flatten="general", names=True), IMAGE)
        blist = builtin.init(k1, F64)
        lparams = params_to_linen(model, blist)
        x, y = images(k2, 9)
    task = fj.data.from_arrays(x, y, x, y, n_out=N_OUT)
    fbl = fj.init_feedback(k3, builtin, rule, dtype=F64)
    fb = feedback_to_linen(model, rule, fbl)
    sb = _step(builtin, rule, blist, fbl, task)
    sl = _step(model, rule, lparams, fb, task)
    chex.assert_trees_all_close(params_to_list(model, sl.params, blist), sb.params, **TOL)
    chex.assert_trees_all_close(feedback_to_list(model, rule, sl.feedback, fbl), sb.feedback, **TOL)
    assert jax.tree.structure(sl.feedback) == jax.tree.structure(fb)  # still the params' structure
    new = model.feedback_list(rule, sl.feedback)
    for B0, B in zip(model.feedback_list(rule, fb), new):  # the hook changed every B
        _differs(B, B0)
    if rule == "brsf":  # redrawn from U(-a, a), a = sqrt(3 / fan_in), not moved from the old B
        for B in new:
            assert float(jnp.abs(B).max()) <= np.sqrt(3 / fans(B.shape)[0])
    if rule.startswith("kp"):  # B - W decays by lam at each of the 2 steps
        ws0, ws = model.kernels(lparams), model.kernels(sl.params)
        for B0, B, w0, w in zip(model.feedback_list(rule, fb), new, ws0, ws):
            np.testing.assert_allclose(B - w, 0.9 ** 2 * (B0 - w0), **TOL)


# --- refused rules ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["ntk", "rf_relu"])  # pepita runs: tests/wrap/test_pepita.py
def test_rules_that_rewire_fa_jax_models_are_refused(x64, keys, rule):
    model = wrap(MLP(), (SIZES[0],))
    params = model.init(keys(1)[0])
    x = jnp.zeros((3, SIZES[0]))
    msg = one_line_error(lambda: model.apply(params, x, rule=rule), f"rule {rule!r} does not run on a wrapped Flax model")
    assert "bp" in msg and "FA or DFA family" in msg
    one_line_error(lambda: model.check_rule(rules_lib.get(rule)), "does not run on a wrapped Flax model")
    task = fj.data.from_arrays(np.zeros((8, SIZES[0])), np.arange(8) % N_OUT, np.zeros((4, SIZES[0])),
                               np.arange(4) % N_OUT, n_out=N_OUT)
    one_line_error(lambda: fj.sweep(model, task, rule=rule, seeds=1, steps=2, eval_every=1, progress=False),
                   "does not run on a wrapped Flax model")


class LocalEinsumNet(nn.Module):
    """ConvLocal (unshared kernels) -> relu -> flatten -> Einsum -> tanh -> Dense: the other weighted layers."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.ConvLocal(3, (3, 3), param_dtype=F64)(x)).reshape(x.shape[0], -1)
        x = jnp.tanh(nn.Einsum((x.shape[-1], 5), "ab,bc->ac", param_dtype=F64)(x))
        return nn.Dense(N_OUT, param_dtype=F64)(x)


def test_fa_with_B_equal_to_every_kernel_is_bp_through_conv_local_and_einsum(x64, keys):
    k1, k2, k3 = keys(3)
    model = wrap(LocalEinsumNet(), IMAGE)
    assert [kind for _, kind, *_ in model.calls] == ["ConvLocal", "Einsum", "Dense"]
    params = model.init(k1)
    x, y = images(k2)
    g_bp = grads(model, params, x, y, "bp", None)
    chex.assert_trees_all_close(grads(model, params, x, y, "fa", {k: {"kernel": v["kernel"]} for k, v in params.items()}),
                                g_bp, **TOL)
    g_rand = grads(model, params, x, y, "fa", fj.init_feedback(k3, model, "fa", dtype=F64))
    _differs(g_rand["ConvLocal_0"]["kernel"], g_bp["ConvLocal_0"]["kernel"])
    chex.assert_trees_all_close(g_rand["Dense_0"], g_bp["Dense_0"], **TOL)
