"""Dropout variants (Bernoulli, Gaussian, DropConnect, standout): identity at eval, expectation kept at
train time, DropConnect's mask on the weights, FA/DFA through the same masks, sweeps and resume."""

import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.models import dropout as D
from fa_jax.models.norm_mlp import norm_mlp
from fa_jax.training import checkpoint

TOL = dict(rtol=1e-10, atol=1e-12)
KINDS = D.KINDS


def _mlp(sizes, kind, p=0.3, **kw):
    return norm_mlp(sizes, activation="tanh", dropout=kind, p=p, **kw)


def _conv(kind, p=0.3, deep=True):
    """A small conv net with dropout in its first block (and, when ``deep``, a second conv block)."""
    drop = f"dropout({p},kind={kind})"
    layers = ["conv(3,3)", "tanh", drop] + (["conv(4,3,stride=2)", "tanh"] if deep else []) + ["flatten", "dense(3)"]
    return fj.cnn.sequential((6, 6, 2), layers)


@pytest.mark.parametrize("kind", KINDS)
def test_eval_mode_is_the_identity(keys, kind):
    k1, k2 = keys(2)
    h = jax.random.normal(k1, (5, 7))
    if kind != "dropconnect":
        assert D.dropout(None, h, 0.4, train=False, kind=kind) is h
    x = jax.random.normal(k2, (5, 6))
    dropped, plain = _mlp([6, 8, 8, 3], kind), _mlp([6, 8, 8, 3], "none")
    params = plain.init(k1)
    np.testing.assert_array_equal(dropped.apply(params, x, train=False, key=k2), plain.apply(params, x))
    net, ref = _conv(kind), fj.cnn.sequential((6, 6, 2), ["conv(3,3)", "tanh", "conv(4,3,stride=2)", "tanh",
                                                          "flatten", "dense(3)"])
    params = ref.init(k1)
    xi = jax.random.normal(k2, (2, 6, 6, 2))
    np.testing.assert_array_equal(net.apply(params, xi, train=False, key=k2), ref.apply(params, xi))


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian", "standout"])
def test_unit_dropout_keeps_the_expectation(keys, kind):
    """Mean over N = 40000 draws within 5 standard errors of h, elementwise (the standard error from the
    multiplier's variance: p / (1 - p) for Bernoulli and Gaussian, (1 - q) / q for standout)."""
    k1, k2 = keys(2)
    h = jax.random.normal(k1, (12,)) + 0.5
    n, p = 40000, 0.3
    out = jax.vmap(lambda k: D.dropout(k, h, p, kind=kind))(jax.random.split(k2, n))
    if kind == "standout":  # pre-activation = h itself; q = sigmoid(h + logit(1 - p))
        q = np.clip(1 / (1 + np.exp(-(np.asarray(h) + np.log((1 - p) / p)))), 0.01, 1)
        var = (1 - q) / q
    else:
        var = p / (1 - p)
    se = np.abs(np.asarray(h)) * np.sqrt(var / n)
    assert np.all(np.abs(np.asarray(out.mean(0)) - np.asarray(h)) < 5 * se + 1e-6)
    if kind == "gaussian":  # no unit is ever fully disconnected
        assert np.all(np.asarray(out) != 0)
    else:
        assert np.any(np.asarray(out) == 0)


def test_standout_keeps_large_pre_activations_more_often(keys):
    """q = sigmoid(alpha a + logit(1 - p)): a = 0 keeps with 1 - p, large a with ~1, negative a rarely."""
    k = keys(1)[0]
    a = jnp.array([-4.0, 0.0, 4.0])
    kept = jax.vmap(lambda kk: D.dropout(kk, jnp.ones(3), 0.5, kind="standout", pre=a) != 0)(jax.random.split(k, 20000))
    want = np.clip(1 / (1 + np.exp(-np.asarray(a))), 0.01, 1)
    np.testing.assert_allclose(np.asarray(kept.mean(0)), want, atol=0.02)


def test_dropconnect_keeps_the_expectation_of_the_layer(keys):
    """E[x (W * M / (1 - p))] = x W; N = 20000 masks, within 5 standard errors."""
    k1, k2, k3 = keys(3)
    x, w = jax.random.normal(k1, (4, 5)), jax.random.normal(k2, (5, 3))
    p, n = 0.4, 20000
    out = jax.vmap(lambda k: x @ (w * D.connect_scale(k, w.shape, p, w.dtype)))(jax.random.split(k3, n))
    se = np.sqrt((np.asarray(x) ** 2) @ (np.asarray(w) ** 2) * p / (1 - p) / n)
    assert np.all(np.abs(np.asarray(out.mean(0)) - np.asarray(x @ w)) < 5 * se)


def test_dropconnect_masks_the_weights_not_the_units(x64, keys):
    """With a fixed key the forward is the plain net at W1 * S (S = M / (1 - p) from the layer's key), and
    dJ/dW1 = (dJ/dW at W1 * S) * S: zero exactly where an edge is dropped; the output layer is not dropped."""
    k1, k2, k3, k4 = keys(4)
    x = jax.random.normal(k2, (9, 6), jnp.float64)
    y = jax.random.randint(k3, (9,), 0, 3)
    model, plain = _mlp([6, 8, 3], "dropconnect", p=0.5), _mlp([6, 8, 3], "none")
    params = plain.init(k1, jnp.float64)
    s = D.connect_scale(jax.random.fold_in(k4, 0), (6, 8), 0.5, jnp.float64)

    def loss(p, m, **kw):
        return fj.losses.softmax_ce(m.apply(p, x, **kw), y)

    masked = [{**params[0], "w": params[0]["w"] * s}, params[1]]
    np.testing.assert_allclose(model.apply(params, x, train=True, key=k4), plain.apply(masked, x), **TOL)
    g = jax.grad(loss)(params, model, train=True, key=k4)
    g_ref = jax.grad(loss)(masked, plain)
    np.testing.assert_allclose(g[0]["w"], g_ref[0]["w"] * s, **TOL)
    np.testing.assert_allclose(g[0]["b"], g_ref[0]["b"], **TOL)
    chex.assert_trees_all_close(g[1], g_ref[1], **TOL)
    assert np.all(np.asarray(g[0]["w"])[np.asarray(s) == 0] == 0) and np.any(np.asarray(s) == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_fa_with_B_equal_W_and_one_hidden_layer_dfa_are_bp_under_each_dropout(x64, keys, kind):
    """The masks are part of the forward pass: FA with B = W (DropConnect: B masked as W) and DFA on one
    hidden layer with B = W_out^T equal BP with the same key, for the MLP and a conv net."""
    k1, k2, k3, k4 = keys(4)
    x = jax.random.normal(k2, (8, 5), jnp.float64)
    xi = jax.random.normal(k2, (4, 6, 6, 2), jnp.float64)
    y = jax.random.randint(k3, (8,), 0, 3)
    cases = [
        (_mlp([5, 7, 6, 3], kind), x, "fa", lambda p: [q["w"] for q in p]),
        (_mlp([5, 7, 3], kind), x, "dfa", lambda p: [p[1]["w"].T]),
        (_conv(kind), xi, "fa", lambda p: [q["w"] for q in p]),
        (_conv(kind, deep=False), xi, "dfa", lambda p: [p[1]["w"].T]),
    ]
    for model, inputs, rule, fb_of in cases:
        params = model.init(k1, jnp.float64)

        def loss(p, rule, fb):
            out = model.apply(p, inputs, rule=rule, feedback=fb, train=True, key=k4)
            return fj.losses.softmax_ce(out, y[: inputs.shape[0]])

        g_bp = jax.grad(loss)(params, "bp", None)
        chex.assert_trees_all_close(jax.grad(loss)(params, rule, fb_of(params)), g_bp, **TOL)


@pytest.mark.parametrize("kind", KINDS)
def test_each_dropout_trains_in_a_vmapped_sweep_and_resumes_bit_identically(tmp_path, kind):
    task = fj.data.parity(8, 2, n_train=64, n_test=64)
    kw = dict(seeds=2, steps=20, batch_size=16, eval_every=10, progress=False)
    model = norm_mlp([8, 16, 16, 1], dropout=kind, p=0.3)
    plain = fj.sweep(norm_mlp([8, 16, 16, 1]), task, rule="dfa", **kw)
    full = fj.sweep(model, task, rule="dfa", checkpoint=tmp_path / "a", checkpoint_every=10, **kw)
    assert np.isfinite(full.loss).all() and not np.allclose(full.loss, plain.loss)
    half = tmp_path / "b"
    shutil.copytree(tmp_path / "a" / "10", half / "10")
    resumed = fj.sweep(model, task, rule="dfa", checkpoint=half, **kw)
    assert resumed.resumed_from == 10
    np.testing.assert_array_equal(full.loss, resumed.loss)
    for a, b in zip(jax.tree.leaves(checkpoint.to_saveable(full.state)),
                    jax.tree.leaves(checkpoint.to_saveable(resumed.state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_conv_net_with_dropconnect_trains_under_fa_in_a_sweep():
    kind = "dropconnect"
    task = fj.data.images("digits")
    model = fj.cnn.lecture_cnn(task.x_train.shape[1:], task.n_out, width=0.125, dropout=kind, p=0.3)
    res = fj.sweep(model, task, rule="fa", seeds=2, steps=10, batch_size=8, eval_every=5, progress=False)
    assert res.loss.shape == (2, 2)
    assert np.isfinite(res.loss).all() and model.stochastic


@pytest.mark.parametrize("call,msg", [
    (lambda: norm_mlp([3, 4, 1], dropout="gauss"), "unknown dropout 'gauss'; known: none, bernoulli, gaussian, "
                                                   "dropconnect, standout"),
    (lambda: norm_mlp([3, 4, 1], dropout="gaussian", p=1.0), r"dropout p must be in \[0, 1\), got 1.0"),
    (lambda: norm_mlp([3, 4, 1], dropout="standout", p=-0.1), r"dropout p must be in \[0, 1\), got -0.1"),
    (lambda: norm_mlp([3, 4, 1], dropout=0.3, p=0.2), "is a Bernoulli rate already"),
    (lambda: norm_mlp([3, 4, 1], dropout="none", p=2.0), r"dropout p must be in \[0, 1\), got 2.0"),
    (lambda: norm_mlp([3, 4, 1], dropout="standout", standout_alpha=float("nan")), "standout alpha must be"),
    (lambda: fj.cnn.lecture_cnn((8, 8, 1), 10, dropout="drop"), "unknown dropout 'drop'"),
    (lambda: fj.cnn.sequential((6, 6, 1), ["conv(2,3)", "dropout(0.2,kind=standout)", "flatten", "dense(2)"]),
     "must directly follow an activation"),
    (lambda: fj.cnn.sequential((6, 6, 1), ["conv(2,3)", "relu", "dropout(0.2)", "dropout(0.1)", "flatten",
                                           "dense(2)"]), "at most one"),
    (lambda: fj.cnn.sequential((6, 6, 1), ["conv(2,3)", "relu", "dropout(1.5)", "flatten", "dense(2)"]),
     r"dropout p must be in \[0, 1\), got 1.5"),
])
def test_bad_dropout_values_are_one_line_errors(call, msg):
    with pytest.raises(ValueError, match=msg) as err:
        call()
    assert "\n" not in str(err.value)


def test_stochastic_conv_net_needs_a_key_in_train_mode(keys):
    model = _conv("bernoulli")
    params = model.init(keys(1)[0])
    with pytest.raises(ValueError, match="has dropout: pass key= with train=True"):
        model.apply(params, jnp.ones((1, 6, 6, 2)), train=True)
