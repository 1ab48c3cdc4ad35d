"""ff (Forward-Forward; float64 where exact): the hand formula of fa_jax.rules.reference_ff, no gradient
across layers, goodness-free layer inputs, the goodness prediction, jit and vmap, options and models
refused, and sweeps that learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.rules import forward_forward as ffl
from fa_jax.rules import reference_ff as ref
from fa_jax.training.state import init_state

TOL = dict(rtol=1e-10, atol=1e-12)


def _setup(keys, rule="ff", sizes=(8, 12, 10, 3), n=16):
    k1, k2, k3, k4 = keys(4)
    r = fj.rules.get(rule)
    model = fj.mlp(list(sizes), init="glorot_uniform")
    params = model.init(k1, jnp.float64)
    if r.init_params is not None:
        params = r.init_params(k4, model, params)
    x = jax.random.normal(k2, (n, sizes[0]), jnp.float64)
    y = jax.random.rademacher(k3, (n,), jnp.float64) if sizes[-1] == 1 else jax.random.randint(k3, (n,), 0, sizes[-1])
    return r, model, params, x, y


def _objective_grad(rule, model, params, x, y, key):
    """``((value, Aux), grads)`` of ``rule``'s objective on one batch (softmax_ce)."""

    def f(p):
        return rule.train_objective(model, p, fj.rules.Batch(x, y, fj.losses.softmax_ce), None, key)

    return jax.value_and_grad(f, has_aux=True)(params)


_value_and_grad = jax.jit(_objective_grad, static_argnums=(0, 1))


def _np(tree):
    return jax.tree.map(np.asarray, tree)


@pytest.mark.parametrize("label", ["concat", "overlay"])
def test_two_hidden_layers_match_the_hand_formula(x64, keys, label):
    theta = 0.7
    r, model, params, x, y = _setup(keys, f"ff(theta={theta}; label={label})")
    key = keys(1)[0]
    (value, aux), got = _value_and_grad(r, model, params, x, y, key)
    neg = ffl.wrong_labels(jax.random.fold_in(key, 0), y, 3)
    assert not np.any(np.asarray(neg) == np.asarray(y))
    p, xs = _np(params), np.asarray(x)
    losses = ref.layer_losses(p, xs, y, neg, 3, theta, label)
    ro_loss, ro_grads = ref.readout_loss_and_grads(p, xs, y, 3, label)
    np.testing.assert_allclose(aux.metrics["ff_loss"], sum(losses), **TOL)
    np.testing.assert_allclose(aux.metrics["readout_loss"], ro_loss, **TOL)
    np.testing.assert_allclose(value, sum(losses) + ro_loss, **TOL)
    want = [*ref.layer_grads(p, xs, y, neg, 3, theta, label), ro_grads]
    assert set(got[0]) == ({"w", "b", "label_w"} if label == "concat" else {"w", "b"})
    for g, w in zip(got, want):
        assert set(g) == set(w)
        for name in w:
            np.testing.assert_allclose(g[name], w[name], err_msg=name, **TOL)
            assert np.abs(w[name]).max() > 1e-4  # no update is trivially zero
    np.testing.assert_allclose(aux.logits, ref.readout_logits(p, xs, 3, label), **TOL)  # train accuracy: the readout


def test_no_gradient_reaches_an_earlier_layer(x64, keys):
    """Changing layer m's params changes the update of no layer before it (nor of m's own readout input)."""
    r, model, params, x, y = _setup(keys)
    key = keys(1)[0]
    base = _value_and_grad(r, model, params, x, y, key)[1]
    for m in (1, 2):
        changed = [dict(p) for p in params]
        changed[m] = {k: 1.7 * v + 0.1 for k, v in params[m].items()}
        got = _value_and_grad(r, model, changed, x, y, key)[1]
        for layer in range(m):
            for name in base[layer]:
                np.testing.assert_array_equal(got[layer][name], base[layer][name], err_msg=f"{m} -> {layer} {name}")
        assert not np.allclose(got[m]["w"], base[m]["w"])


@pytest.mark.parametrize("label", ["concat", "overlay"])
def test_a_layers_input_carries_no_goodness(x64, keys, label):
    """ReLU: the first layer's w, b (and label_w) times c > 0 scale h_1 by c; every later update stays."""
    r, model, params, x, y = _setup(keys, f"ff(label={label})")
    key = keys(1)[0]
    base = _value_and_grad(r, model, params, x, y, key)[1]
    scaled = [{k: 3.0 * v for k, v in params[0].items()}, *params[1:]]
    got = _value_and_grad(r, model, scaled, x, y, key)[1]
    for layer in (1, 2):
        for name in base[layer]:
            # equal up to eps = 1e-8 in the normalization's sqrt(mean h^2 + eps)
            np.testing.assert_allclose(got[layer][name], base[layer][name], rtol=1e-5, atol=1e-8)
    assert not np.allclose(got[0]["w"], base[0]["w"])


def test_the_goodness_prediction_is_the_argmax_over_labels(x64, keys):
    r, model, params, x, y = _setup(keys, n=40)
    p, xs = _np(params), np.asarray(x)
    # one logit (labels in {-1, +1}): G(class 1) - G(class 0), of the one hidden layer
    r1, model1, params1, x1, _ = _setup(keys, "ff(label=overlay)", sizes=(8, 12, 1))
    readout = fj.rules.get("ff(predict=readout)")
    logits, readout_logits, binary = jax.jit(lambda p, p1: (
        r.infer(model, p, x, None), readout.infer(model, p, x, None), r1.infer(model1, p1, x1, None)))(params, params1)
    want = ref.goodness_scores(p, xs, 3)
    np.testing.assert_allclose(logits, want, **TOL)
    np.testing.assert_array_equal(np.argmax(logits, 1), np.argmax(want, 1))
    np.testing.assert_allclose(readout_logits, ref.readout_logits(p, xs, 3), **TOL)
    scores = ref.goodness_scores(_np(params1), np.asarray(x1), 2, "overlay")
    np.testing.assert_allclose(binary[:, 0], scores[:, 1] - scores[:, 0], **TOL)


def test_under_jit_and_vmap_the_update_is_finite_and_not_bp(keys):
    model, task, tx = fj.mlp([64, 16, 16, 10]), fj.data.digits(), fj.optimizer("adam", 1e-2)
    states = jax.jit(jax.vmap(lambda k: init_state(k, model, "ff", tx)))(jnp.stack(keys(2)))
    x, y = task.x_train[:32], task.y_train[:32]

    @jax.jit
    @jax.vmap
    def grads(params, key):
        ff = _objective_grad(fj.rules.get("ff"), model, params, x, y, key)[1]
        bp = jax.grad(lambda p: fj.losses.softmax_ce(model.apply(p, x), y))(params)
        return ff, bp

    ff, bp = grads(states.params, jnp.stack(keys(2)))
    assert states.params[0]["label_w"].shape == (2, 10, 16)
    for layer in range(3):
        assert np.isfinite(ff[layer]["w"]).all()
        assert not np.allclose(ff[layer]["w"], bp[layer]["w"], rtol=0.1)
        assert not np.allclose(ff[layer]["w"][0], ff[layer]["w"][1])  # the seeds differ


def test_options_and_their_errors():
    assert fj.rules.get("ff(theta=2, predict=goodness)").name == "ff"
    assert fj.rules.get("ff(predict=readout, theta=1.5)").name == "ff(predict=readout;theta=1.5)"
    assert fj.rules.get("ff").family is fj.rules.Family.LOCAL
    one_line_error(lambda: fj.rules.get("ff(theta=0)"), "ff: theta must be")
    one_line_error(lambda: fj.rules.get("ff(neg=noise)"), "unknown ff option neg 'noise'; known: label (the only")
    one_line_error(lambda: fj.rules.get("ff(label=append)"), "unknown ff option label 'append'; known: concat, overlay")
    one_line_error(lambda: fj.rules.get("ff(predict=vote)"), "unknown ff option predict 'vote'; known: goodness")
    one_line_error(lambda: fj.rules.get("ff(eps=1)"), "rule 'ff' has no option 'eps'")


def test_models_it_cannot_run_are_one_line_errors(keys):
    from flax import linen as nn

    cnn = fj.cnn.sequential((4, 4, 1), ["conv(2,3)", "relu", "flatten", "dense(3)"])
    one_line_error(lambda: fj.rules.check_model("ff", cnn), "rule 'ff' runs on fj.mlp")
    flax_model = fj.from_flax(nn.Dense(3), (8,))
    one_line_error(lambda: fj.rules.check_model("ff", flax_model), "rule 'ff' runs on fj.mlp")
    one_line_error(lambda: fj.rules.check_model("ff", fj.mlp([8, 3])), "needs at least one hidden layer")
    one_line_error(lambda: fj.rules.check_model("ff", fj.norm_mlp([8, 6, 3], norm="layer")), "norm='layer'")
    one_line_error(lambda: fj.rules.check_model("ff(label=overlay)", fj.mlp([2, 6, 3])), "use label=concat")
    fj.rules.check_model("ff(label=overlay)", fj.mlp([2, 6, 1]))  # binary: K = 2
    fj.rules.check_model("ff", fj.norm_mlp([8, 6, 3], dropout=0.2))
    model = fj.mlp([8, 6, 3])
    x, y = jnp.ones((4, 8)), jnp.zeros((4,), jnp.int32)
    one_line_error(lambda: fj.rules.get("ff").train_objective(model, model.init(keys(1)[0]),
                                                             fj.rules.Batch(x, y, fj.losses.softmax_ce), None,
                                                             keys(1)[0]), "lack")
    # ff reads class labels: regression targets (real-valued, shaped like the logits) are refused while tracing
    r = fj.rules.get("ff(label=overlay)")
    one_line_error(lambda: jax.eval_shape(lambda p: r.train_objective(
        model, p, fj.rules.Batch(x, jnp.ones((4, 3)), fj.losses.mse), None, keys(1)[0]), model.init(keys(1)[0])),
        "rule 'ff' reads class labels, but these labels are real-valued (float32, shape (4, 3)")


def test_a_sweep_learns_the_digits():
    res = fj.sweep(fj.mlp([64, 64, 64, 10]), fj.data.digits(), rule="ff", seeds=1, steps=150,
                   batch_size=64, lr=1e-2, eval_every=150, progress=False)
    assert res.test_acc[0, -1] > 0.6, res.test_acc  # chance: 0.1
    assert np.isfinite(res.loss).all() and np.isfinite(res.test_loss).all()
    assert set(res.rule_metrics) == {"ff_loss", "readout_loss", "goodness_pos", "goodness_neg"}
    assert res.rule_metrics["goodness_pos"][0, -1] > res.rule_metrics["goodness_neg"][0, -1]
