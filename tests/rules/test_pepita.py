"""pepita (float64): the hand formula of fa_jax.rules.reference, identities (F = 0, a linear net,
the batch mean), F's distribution, options and models refused, diagnostics and sweeps."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg
from fa_jax.rules import pepita as pepita_lib
from fa_jax.rules import reference

TOL = dict(rtol=1e-11, atol=1e-13)


def _setup(keys, activation="tanh", n_out=3, rule="pepita", f_scale=1.0):
    k1, k2, k3, k4 = keys(4)
    model = fj.mlp([8, 12, 10, 9, n_out], activation=activation, init="glorot_uniform")
    params = model.init(k1, jnp.float64)
    x = jax.random.normal(k2, (16, 8), jnp.float64)
    y = jax.random.rademacher(k3, (16,), jnp.float64) if n_out == 1 else jax.random.randint(k3, (16,), 0, n_out)
    # a larger F than the default 0.05 makes the modulation, and so the test, sharper
    fb = [f_scale * B for B in fj.init_feedback(k4, model, rule, dtype=jnp.float64)]
    return model, params, x, y, fb


def _loss(n_out):
    return fj.losses.bce if n_out == 1 else fj.losses.softmax_ce


def _grads(model, params, x, y, fb, rule="pepita", loss=None):
    loss = loss or _loss(model.n_out)
    return jax.grad(lambda p: loss(model.apply(p, x, rule=rule, feedback=fb), y))(params)


def _targets(y, n_out):
    y = np.asarray(y)
    return ((y + 1) / 2).reshape(-1, 1) if n_out == 1 else np.eye(n_out)[y]


@pytest.mark.parametrize("last", ["modulated", "standard"])
@pytest.mark.parametrize("n_out", [3, 1], ids=["softmax_ce", "bce"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_three_hidden_layers_match_the_hand_formula(x64, keys, activation, n_out, last):
    rule = "pepita" if last == "modulated" else "pepita(last=standard)"
    model, params, x, y, fb = _setup(keys, activation, n_out, rule, f_scale=20.0)
    want = reference.pepita_updates(jax.tree.map(np.asarray, params), np.asarray(x), _targets(y, n_out),
                                    np.asarray(fb[0]), activation, last)
    got = _grads(model, params, x, y, fb, rule)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g["w"], r["w"], **TOL)
        np.testing.assert_allclose(g["b"], r["b"], **TOL)
    assert all(np.abs(r["w"]).max() > 1e-4 for r in want)  # the hidden updates are not trivially zero


def test_zero_F_leaves_the_hidden_layers_and_gives_bp_at_the_output(x64, keys):
    model, params, x, y, fb = _setup(keys)
    g = _grads(model, params, x, y, [jnp.zeros_like(fb[0])])
    for p in g[:-1]:
        assert not np.any(p["w"]) and not np.any(p["b"])
    chex.assert_trees_all_close(g[-1], _grads(model, params, x, y, None, "bp")[-1], **TOL)


def test_a_linear_net_sends_minus_e_F_W_to_the_first_layer(x64, keys):
    """Identity activations: h_1 - h_1^mod = -(e F) W_1, so db_1 = -sum_n (e F W_1)_n / N."""
    model, params, x, y, fb = _setup(keys, "identity")
    e = jax.nn.softmax(model.apply(params, x)) - jax.nn.one_hot(y, 3, dtype=jnp.float64)
    g = _grads(model, params, x, y, fb)
    np.testing.assert_allclose(g[0]["b"], -(e @ fb[0] @ params[0]["w"]).mean(0), **TOL)


def test_the_batch_update_is_the_mean_of_the_per_example_updates(x64, keys):
    """e_n = N dL/dy_n: the update of a batch is the mean of each example's own update."""
    model, params, x, y, fb = _setup(keys, f_scale=20.0)
    each = [_grads(model, params, x[i:i + 1], y[i:i + 1], fb) for i in range(x.shape[0])]
    chex.assert_trees_all_close(_grads(model, params, x, y, fb),
                                jax.tree.map(lambda *a: sum(a) / len(a), *each), **TOL)


def test_extra_batch_axes_are_examples_too(x64, keys):
    model, params, x, y, fb = _setup(keys, f_scale=20.0)
    chex.assert_trees_all_close(_grads(model, params, x.reshape(2, 8, 8), y.reshape(2, 8), fb),
                                _grads(model, params, x, y, fb), **TOL)


def test_init_feedback_draws_F_as_the_authors(x64, keys):
    model = fj.mlp([600, 16, 40])
    for rule, scale in [("pepita", 0.05), ("pepita(f_scale=0.3)", 0.3)]:
        (F,) = fj.init_feedback(keys(1)[0], model, rule, dtype=jnp.float64)
        a = scale * np.sqrt(6.0 / 600)
        assert F.shape == (40, 600) and F.dtype == jnp.float64
        assert np.abs(F).max() <= a and np.abs(F).max() > 0.99 * a
        np.testing.assert_allclose(np.var(F), a ** 2 / 3, rtol=0.03)
        assert abs(float(np.mean(F))) < 0.02 * a


def test_bad_options_and_models_are_one_line_errors(x64, keys):
    one_line_error(lambda: fj.rules.get("pepita(f_scale=0)"), "pepita: f_scale")
    one_line_error(lambda: fj.rules.get("pepita(last=first)"), "unknown pepita option last 'first'")
    one_line_error(lambda: fj.rules.get("pepita(output=tanh)"), "unknown pepita option output 'tanh'")
    one_line_error(lambda: fj.rules.get("pepita(lr=1)"), "rule 'pepita' has no option 'lr'")
    cnn = fj.cnn.sequential((4, 4, 1), ["conv(2,3)", "relu", "flatten", "dense(3)"])
    one_line_error(lambda: fj.rules.check_model("pepita", cnn), "rule 'pepita' runs on fj.mlp")
    one_line_error(lambda: fj.init_feedback(keys(1)[0], cnn, "pepita"), "rule 'pepita' runs on fj.mlp")
    bn = fj.norm_mlp([8, 16, 3], norm="batch")
    one_line_error(lambda: fj.rules.check_model("pepita", bn), "without batch norm")
    model, params, x, y, fb = _setup(keys)
    one_line_error(lambda: model.apply(params, x, rule="pepita"), "rule 'pepita' needs feedback")


def test_sigmoid_output_for_bce_on_several_outputs(x64, keys):
    """bce on one-hot targets: e = sigmoid(y) - t per entry; output=sigmoid makes e_mod exact."""
    model, params, x, y, fb = _setup(keys, f_scale=20.0)
    t = np.eye(3)[np.asarray(y)]
    got = _grads(model, params, x, y, fb, "pepita(output=sigmoid)", fj.losses.bce)
    p = jax.tree.map(np.asarray, params)
    e = 1 / (1 + np.exp(-reference.forward(p, np.asarray(x), "tanh")[2])) - t
    _, hs_mod, z_mod = reference.forward(p, np.asarray(x) + e @ np.asarray(fb[0]), "tanh")
    h_mod = hs_mod[-1]
    e_mod = 1 / (1 + np.exp(-z_mod)) - t
    np.testing.assert_allclose(got[-1]["w"], h_mod.T @ e_mod / 16, **TOL)


def test_diagnostics_give_grad_and_signal_alignment(x64, keys):
    model, params, x, y, fb = _setup(keys, f_scale=20.0)
    out = dg.diagnose(model, "pepita", fj.losses.softmax_ce, params, fb, x, y)
    assert out["grad_alignment_deg"].shape == (4,) and out["signal_alignment_deg"].shape == (3,)
    assert "weight_alignment_deg" not in out and np.isfinite(out["signal_alignment_deg"]).all()
    # the signal at h_l is (h_l - h_l^mod) / N: its angle with BP's dL/dh_l, per example
    _, hs, _ = reference.forward(jax.tree.map(np.asarray, params), np.asarray(x), "tanh")
    _, s_bp = dg.rule_gradients(model, "bp", fj.losses.softmax_ce, params, None, x, y)
    e = jax.nn.softmax(model.apply(params, x)) - jax.nn.one_hot(y, 3, dtype=jnp.float64)
    _, hs_mod, _ = reference.forward(jax.tree.map(np.asarray, params), np.asarray(x + e @ fb[0]), "tanh")
    for l in range(3):
        want = np.nanmean(dg.angle_deg(hs[l + 1] - hs_mod[l + 1], s_bp[l], axis=1))
        np.testing.assert_allclose(out["signal_alignment_deg"][l], want, rtol=1e-9)
    # with F = 0 the output layer's update is BP's
    out0 = dg.diagnose(model, "pepita", fj.losses.softmax_ce, params, [0 * fb[0]], x, y)
    np.testing.assert_allclose(out0["grad_alignment_deg"][-1], 0.0, atol=1e-5)


def test_the_vjp_of_any_weighted_call_is_the_dense_formula(x64, keys):
    """One implementation for every pass: a dense map recorded as an arbitrary fn (the vjp branch, as a
    wrapped Flax layer's) gives the hand formula of the built-in's dense op, and the same gradients."""
    model, params, x, y, fb = _setup(keys, f_scale=20.0)

    def generic(params, x, record):  # layered_pass with a dense fn that is not pepita's own
        y_, hs, calls = pepita_lib.layered_pass(model.layers)(params, x, record)
        return y_, hs, [(w, lambda h, p: h @ p["w"] + p["b"], h, p, o) for w, _, h, p, o in calls]

    def loss(run):
        return lambda p: fj.losses.softmax_ce(pepita_lib.pepita_apply(run, "modulated", None, p, x, fb[0]), y)

    got = jax.grad(loss(generic))(params)
    chex.assert_trees_all_close(got, jax.grad(loss(pepita_lib.layered_pass(model.layers)))(params), **TOL)
    chex.assert_trees_all_close(got, _grads(model, params, x, y, fb), **TOL)


def test_sweeps_learn_digits_and_run_norm_mlp_with_diagnostics():
    task = fj.data.digits()
    res = fj.sweep(fj.mlp([64, 64, 10]), task, rule="pepita", seeds=2, steps=300, batch_size=32, eval_every=100,
                   optimizer="sgd", lr=0.05, progress=False, diagnostics=True)
    assert np.isfinite(res.loss).all() and (res.test_acc[:, -1] > 0.5).all(), res.test_acc  # chance: 0.1
    assert res.diagnostics["grad_alignment_deg"].shape == (2, 3, 2)
    assert res.diagnostics["signal_alignment_deg"].shape == (2, 3, 1)
    model = fj.norm_mlp([8, 16, 16, 1], norm="layer", dropout=0.1)
    res = fj.sweep(model, fj.data.parity(8, 2), rule="pepita(f_scale=0.1)", seeds=2, steps=20, batch_size=16,
                   eval_every=10, progress=False, diagnostics=True)
    assert res.test_acc.shape == (2, 2) and np.isfinite(res.loss).all()
