"""drtp and sdfa (float64): hand formulas of fa_jax.rules.reference, drtp's independence of the
output, sdfa's invariance to a positive rescaling of the error, targets errors, sweeps."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg
from fa_jax.rules import reference

TOL = dict(rtol=1e-11, atol=1e-13)


def _setup(keys, rule, activation="tanh", n_out=1):
    k1, k2, k3, k4 = keys(4)
    model = fj.mlp([8, 12, 10, 9, n_out], activation=activation, init="glorot_uniform")
    params = model.init(k1, jnp.float64)
    x = jax.random.normal(k2, (16, 8), jnp.float64)
    y = jax.random.rademacher(k3, (16,), jnp.float64) if n_out == 1 else jax.random.randint(k3, (16,), 0, n_out)
    return model, params, x, y, fj.init_feedback(k4, model, rule, dist="normal", dtype=jnp.float64)


def _grads(model, params, x, y, rule, fb, loss=fj.losses.bce):
    return jax.grad(lambda p: loss(model.apply(p, x, rule=rule, feedback=fb, targets=y), y))(params)


@pytest.mark.parametrize("rule", ["drtp", "sdfa"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_three_hidden_layers_match_the_hand_formula(x64, keys, rule, activation):
    model, params, x, y, fb = _setup(keys, rule, activation)
    p, y01 = jax.tree.map(np.asarray, params), (np.asarray(y) + 1) / 2
    fbs = [np.asarray(B) for B in fb]
    ref = reference.drtp_grads if rule == "drtp" else reference.sdfa_grads
    want = ref(p, np.asarray(x), y01, fbs, activation)
    for g, r in zip(_grads(model, params, x, y, rule, fb), want):
        np.testing.assert_allclose(g["w"], r["w"], **TOL)
        np.testing.assert_allclose(g["b"], r["b"], **TOL)


def test_drtp_sends_the_one_hot_target_for_classes(x64, keys):
    """Identity activations: db_l = sum_n (onehot(y_n) @ B_l) * 1, the hidden layers' bias gradients."""
    model, params, x, y, fb = _setup(keys, "drtp", "identity", n_out=3)
    g = _grads(model, params, x, y, "drtp", fb, fj.losses.softmax_ce)
    t = np.eye(3)[np.asarray(y)]
    for l in range(3):
        np.testing.assert_allclose(g[l]["b"], (t @ np.asarray(fb[l])).sum(0), **TOL)


def test_drtp_hidden_signal_does_not_depend_on_the_output(x64, keys):
    model, params, x, y, fb = _setup(keys, "drtp")
    other = params[:-1] + [{"w": 5.0 * params[-1]["w"] + 1.0, "b": params[-1]["b"] - 3.0}]
    g, g_other = _grads(model, params, x, y, "drtp", fb), _grads(model, other, x, y, "drtp", fb)
    chex.assert_trees_all_close(g[:-1], g_other[:-1], **TOL)
    assert not np.allclose(g[-1]["w"], g_other[-1]["w"])  # the output layer: its true gradient


def test_sdfa_ignores_a_positive_rescaling_of_the_error(x64, keys):
    """With mse weighted per entry by c > 0, e becomes c * e: sign(e), hence the hidden updates, stay."""
    model, params, x, y, fb = _setup(keys, "sdfa", n_out=3)
    t = jax.nn.one_hot(y, 3, dtype=jnp.float64)
    c = jax.random.uniform(keys(5)[4], (16, 3), jnp.float64, 0.1, 10.0)
    plain = _grads(model, params, x, t, "sdfa", fb, lambda z, t_: 0.5 * jnp.sum((z - t_) ** 2))
    scaled = _grads(model, params, x, t, "sdfa", fb, lambda z, t_: 0.5 * jnp.sum(c * (z - t_) ** 2))
    chex.assert_trees_all_close(plain[:-1], scaled[:-1], **TOL)
    assert not np.allclose(plain[-1]["w"], scaled[-1]["w"])


def test_drtp_needs_targets_to_be_differentiated_and_a_model_that_takes_them(x64, keys):
    model, params, x, y, fb = _setup(keys, "drtp")
    assert model.apply(params, x, rule="drtp", feedback=fb).shape == (16, 1)  # evaluation needs none
    one_line_error(lambda: jax.grad(lambda p: model.apply(p, x, rule="drtp", feedback=fb).sum())(params),
                   "rule 'drtp' sends the target to the hidden layers")
    fj.rules.check_model("drtp", fj.cnn.sequential((4, 4, 1), ["conv(2,3)", "relu", "flatten", "dense(1)"]))

    class NoTargets:  # a model whose apply takes no targets=
        n_out, hidden_shapes = 1, [(12,)]

        def apply(self, params, x, *, rule="bp", feedback=None):
            return x

    one_line_error(lambda: fj.rules.check_model("drtp", NoTargets()), "NoTargets does not")


@pytest.mark.parametrize("rule", ["drtp", "sdfa"])
def test_diagnostics_and_sweeps(x64, keys, rule):
    model, params, x, y, fb = _setup(keys, rule)
    out = dg.diagnose(model, rule, fj.losses.bce, params, fb, x, y)
    assert out["grad_alignment_deg"].shape == (4,) and out["signal_alignment_deg"].shape == (3,)
    assert out["weight_alignment_deg"].shape == (3,)
    np.testing.assert_allclose(out["grad_alignment_deg"][-1], 0.0, atol=1e-6)  # the output layer is BP's
    task = fj.data.parity(8, 2)
    kw = dict(rule=rule, seeds=2, steps=20, batch_size=16, eval_every=10, progress=False)
    for m in (fj.mlp([8, 16, 16, 1]), fj.norm_mlp([8, 16, 16, 1], norm="batch")):
        res = fj.sweep(m, task, **kw)
        assert res.test_acc.shape == (2, 2) and np.isfinite(res.loss).all()
