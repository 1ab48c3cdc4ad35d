"""The DFA family on conv nets (float64): weight-shared conv feedback (``conv=shared``) and drtp's
targets against numpy formulas with explicit loops, the plain rules unchanged, init, errors, sweeps."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg

TOL = dict(rtol=1e-10, atol=1e-12)
LAYERS = ["conv(4,3)", "relu", "conv(3,3)", "tanh", "flatten", "dense(6)", "tanh", "dense(5)"]
N, H, W, N_OUT = 6, 6, 6, 5


# --- numpy: SAME stride-1 convolutions by explicit loops --------------------------------------------

def np_conv(x, w):
    """Forward conv (cross-correlation), SAME, stride 1: x (N, H, W, Ci), w (k, k, Ci, Co)."""
    k, p = w.shape[0], w.shape[0] // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    out = np.zeros(x.shape[:3] + (w.shape[-1],))
    for a in range(k):
        for b in range(k):
            out += xp[:, a:a + x.shape[1], b:b + x.shape[2], :] @ w[a, b]
    return out


def np_conv_wgrad(x, delta, k):
    """dL/dw of :func:`np_conv` for the output gradient delta (N, H, W, Co): (k, k, Ci, Co)."""
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    dw = np.zeros((k, k, x.shape[-1], delta.shape[-1]))
    for a in range(k):
        for b in range(k):
            dw[a, b] = np.einsum("nijc,nijd->cd", xp[:, a:a + x.shape[1], b:b + x.shape[2], :], delta)
    return dw


def np_shared_signal(s, K, h, w):
    """signal[n, i, j, c] = sum over taps (a, b) inside the grid of sum_o s[n, o] K[a, b, o, c]."""
    k, p = K.shape[0], K.shape[0] // 2
    out = np.zeros((s.shape[0], h, w, K.shape[-1]))
    for i in range(h):
        for j in range(w):
            for a in range(k):
                for b in range(k):
                    if 0 <= i + a - p < h and 0 <= j + b - p < w:
                        out[:, i, j] += s @ K[a, b]
    return out


def np_signal(s, B, shape):
    """The signal of feedback B for a hidden activation of ``shape``: a shared kernel or a dense matrix."""
    return np_shared_signal(s, B, *shape[:2]) if B.ndim == 4 else (s @ B).reshape((s.shape[0],) + shape)


def np_grads(params, x, y, fb, source):
    """Every block's gradient under a DFA-family rule for :data:`LAYERS` (relu, tanh, tanh hidden blocks)."""
    p = [{k: np.asarray(v) for k, v in q.items()} for q in params]
    x, fb = np.asarray(x), [np.asarray(B) for B in fb]
    a0 = np_conv(x, p[0]["w"]) + p[0]["b"]
    h0 = np.maximum(a0, 0)
    h1 = np.tanh(np_conv(h0, p[1]["w"]) + p[1]["b"])
    f1 = h1.reshape(N, -1)
    h2 = np.tanh(f1 @ p[2]["w"] + p[2]["b"])
    z = h2 @ p[3]["w"] + p[3]["b"]
    t = np.eye(N_OUT)[np.asarray(y)]
    sm = np.exp(z - z.max(1, keepdims=True))
    e = (sm / sm.sum(1, keepdims=True) - t) / N
    s = {"e": e, "sign": np.sign(e), "target": t}[source]
    d0 = np_signal(s, fb[0], h0.shape[1:]) * (a0 > 0)
    d1 = np_signal(s, fb[1], h1.shape[1:]) * (1 - h1 ** 2)
    d2 = np_signal(s, fb[2], h2.shape[1:]) * (1 - h2 ** 2)
    return [{"w": np_conv_wgrad(x, d0, p[0]["w"].shape[0]), "b": d0.sum((0, 1, 2))},
            {"w": np_conv_wgrad(h0, d1, p[1]["w"].shape[0]), "b": d1.sum((0, 1, 2))},
            {"w": f1.T @ d2, "b": d2.sum(0)}, {"w": h2.T @ e, "b": e.sum(0)}]


# --- setup ------------------------------------------------------------------------------------------

def _setup(keys, rule, layers=LAYERS, shape=(H, W, 2)):
    k1, k2, k3, k4 = keys(4)
    model = fj.cnn.sequential(shape, layers, init="glorot_uniform")
    params = model.init(k1, jnp.float64)
    params = [{**p, "b": p["b"] + 0.1 * jax.random.normal(k, p["b"].shape, jnp.float64)}
              for p, k in zip(params, jax.random.split(k3, len(params)))]
    x = jax.random.normal(k2, (N,) + shape, jnp.float64)
    y = jnp.arange(N) % N_OUT
    return model, params, x, y, fj.init_feedback(k4, model, rule, dist="normal", dtype=jnp.float64)


def _grads(model, params, x, y, rule, fb, **kw):
    def loss(p):
        out = model.apply(p, x, rule=rule, feedback=fb, targets=y, **kw)
        return fj.losses.softmax_ce(out[0] if isinstance(out, tuple) else out, y)
    return jax.grad(loss)(params)


SOURCES = {"dfa": "e", "sdfa": "sign", "drtp": "target"}


# --- the formulas -----------------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["dfa", "sdfa", "drtp"])
@pytest.mark.parametrize("opts", ["conv=shared", "conv=shared; k=5", "conv=shared; k=1"])
def test_shared_conv_feedback_matches_the_loop_formula(x64, keys, base, opts):
    rule = f"{base}({opts})"
    model, params, x, y, fb = _setup(keys, rule)
    k = 3 if "k=" not in opts else int(opts[-1])
    assert [B.shape for B in fb] == [(k, k, N_OUT, 4), (k, k, N_OUT, 3), (N_OUT, 6)]
    g = _grads(model, params, x, y, rule, fb)
    for got, want in zip(g, np_grads(params, x, y, fb, SOURCES[base])):
        np.testing.assert_allclose(got["w"], want["w"], **TOL)
        np.testing.assert_allclose(got["b"], want["b"], **TOL)


def test_the_shared_signal_is_constant_inside_the_border(x64, keys):
    """Documented caveat: a tiled source through a SAME kernel is constant more than k//2 pixels from the border."""
    model, params, x, y, fb = _setup(keys, "dfa(conv=shared)")
    e = jax.random.normal(keys(5)[4], (N, N_OUT), jnp.float64)
    s = fj.rules.conv_feedback.conv_signal(e, fb[0], jnp.zeros((N, H, W, 4)))
    np.testing.assert_allclose(s, np_shared_signal(np.asarray(e), np.asarray(fb[0]), H, W), **TOL)
    inner = np.asarray(s[:, 1:-1, 1:-1])
    np.testing.assert_allclose(inner, np.broadcast_to(inner[:, :1, :1], inner.shape), **TOL)
    assert not np.allclose(s[:, 0, 0], s[:, 2, 2])


@pytest.mark.parametrize("rule", ["dfa", "sdfa", "drtp"])
def test_plain_rules_keep_dense_feedback_on_conv_nets(x64, keys, rule):
    model, params, x, y, fb = _setup(keys, rule)
    assert [B.shape for B in fb] == [(N_OUT, math.prod(s)) for s in model.hidden_shapes]
    assert fj.rules.get(rule).feedback_shapes(model) == fj.rules.get(f"{rule}(conv=dense)").feedback_shapes(model)
    assert fj.RULES["dfa"].wire is fj.rules.dfa and not fj.RULES[rule].doc.endswith("SAME")
    g = _grads(model, params, x, y, rule, fb)
    for got, want in zip(g, np_grads(params, x, y, fb, SOURCES[rule])):  # dense DFA's formula, its source
        np.testing.assert_allclose(got["w"], want["w"], **TOL)
        np.testing.assert_allclose(got["b"], want["b"], **TOL)


def test_shared_feedback_on_flat_activations_is_dense(keys):
    model = fj.cnn.image_mlp((4, 4, 1), 3, hidden=(5, 7))
    for base in ("dfa", "sdfa", "drtp"):
        assert fj.rules.get(f"{base}(conv=shared)").feedback_shapes(model) == [(3, 5), (3, 7)]


# --- drtp on conv nets ------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["drtp", "drtp(conv=shared)"])
@pytest.mark.parametrize("bn", [False, True])
def test_drtp_conv_hidden_grads_do_not_depend_on_the_output(x64, keys, rule, bn):
    layers = ["conv(4,3)", "batchnorm", "relu", "conv(3,3)", "tanh", "flatten", "dense(5)"] if bn else LAYERS
    model, params, x, y, fb = _setup(keys, rule, layers)
    kw = dict(stats=model.init_stats(jnp.float64), train=True) if bn else {}
    other = params[:-1] + [{"w": 5.0 * params[-1]["w"] + 1.0, "b": params[-1]["b"] - 3.0}]
    g, g_other = _grads(model, params, x, y, rule, fb, **kw), _grads(model, other, x, y, rule, fb, **kw)
    chex.assert_trees_all_close(g[:-1], g_other[:-1], **TOL)
    assert not np.allclose(g[-1]["w"], g_other[-1]["w"])  # the output layer: its true gradient


def test_drtp_on_a_conv_net_needs_targets_to_be_differentiated(x64, keys):
    model, params, x, y, fb = _setup(keys, "drtp")
    assert model.apply(params, x, rule="drtp", feedback=fb).shape == (N, N_OUT)  # evaluation needs none
    one_line_error(lambda: jax.grad(lambda p: model.apply(p, x, rule="drtp", feedback=fb).sum())(params),
                   "rule 'drtp' sends the target to the hidden layers")


# --- init, diagnostics, errors, sweeps --------------------------------------------------------------

def test_init_feedback_draws_the_kernels_by_the_documented_formula(x64, keys):
    model = fj.cnn.sequential((H, W, 2), LAYERS)
    key = keys(1)[0]
    shapes = [(3, 3, N_OUT, 4), (3, 3, N_OUT, 3), (N_OUT, 6)]
    ks = jax.random.split(key, 3)
    fb = fj.init_feedback(key, model, "dfa(conv=shared)", dtype=jnp.float64)  # uniform, m = fan_in = k^2 n_out
    for B, k, s in zip(fb, ks, shapes):
        a = math.sqrt(3.0 / (N_OUT * (9 if len(s) == 4 else 1)))
        np.testing.assert_allclose(B, jax.random.uniform(k, s, jnp.float64, minval=-a, maxval=a), rtol=1e-14)
    fb = fj.init_feedback(key, model, "sdfa(conv=shared)", dist="normal", scaling="fan_avg", dtype=jnp.float64)
    xavier = math.sqrt(2.0 / (9 * (N_OUT + 4)))  # biotorch's xavier std for a (n_out, C, 3, 3) kernel
    np.testing.assert_allclose(fb[0], xavier * jax.random.normal(ks[0], shapes[0], jnp.float64), rtol=1e-14)
    big = fj.cnn.sequential((4, 4, 1), ["conv(64,3)", "flatten", "dense(10)"])
    K = fj.init_feedback(key, big, "dfa(conv=shared)", dtype=jnp.float64)[0]
    assert K.shape == (3, 3, 10, 64) and abs(float(K.std()) * math.sqrt(90) - 1) < 0.05


def test_diagnostics_with_shared_feedback(x64, keys):
    rule = "dfa(conv=shared)"
    model, params, x, y, fb = _setup(keys, rule)
    out = dg.diagnose(model, rule, fj.losses.softmax_ce, params, fb, x, y)
    assert "weight_alignment_deg" not in out and dg.weight_alignment(rule, params, fb) is None
    assert out["grad_alignment_deg"].shape == (4,) and out["signal_alignment_deg"].shape == (3,)
    assert np.isfinite(out["signal_alignment_deg"]).all()
    np.testing.assert_allclose(out["grad_alignment_deg"][-1], 0.0, atol=1e-6)  # the output layer is BP's
    _, signals = dg.rule_gradients(model, rule, fj.losses.softmax_ce, params, fb, x, y)
    z = model.apply(params, x)
    e = np.asarray(jax.grad(lambda z_: fj.losses.softmax_ce(z_, y))(z))
    np.testing.assert_allclose(signals[0], np_shared_signal(e, np.asarray(fb[0]), H, W), **TOL)


@pytest.mark.parametrize("spec,match", [
    ("dfa(conv=foo)", "unknown dfa option conv 'foo'; known: dense, shared"),
    ("sdfa(conv=shared; k=0)", "rule 'sdfa': k must be an odd positive int (1, 3, 5, ...), got 0"),
    ("drtp(conv=shared; k=4)", "k must be an odd positive int"),
    ("dfa(conv=shared; k=2.5)", "k must be an odd positive int"),
    ("dfa(k=3)", "option k is the kernel size of conv=shared; conv=dense has none"),
    ("sdfa(kernel=3)", "rule 'sdfa' has no option 'kernel'; its options: conv, k"),
])
def test_bad_options_are_one_line_errors_before_compilation(spec, match):
    one_line_error(lambda: fj.rules.get(spec), match)
    model = fj.cnn.sequential((8, 8, 1), ["conv(2,3)", "relu", "flatten", "dense(10)"])
    one_line_error(lambda: fj.sweep(model, fj.data.images("digits", limit=16, test_limit=8), rule=spec, steps=2,
                                    eval_every=1, progress=False), match)


@pytest.mark.parametrize("rule,bn", [("dfa(conv=shared)", False), ("drtp(conv=shared; k=5)", True), ("drtp", False)])
def test_short_sweeps_on_a_conv_net_are_finite(rule, bn):
    layers = ["conv(4,3)"] + (["batchnorm"] if bn else []) + ["relu", "maxpool(2)", "flatten", "dense(10)"]
    model = fj.cnn.sequential((8, 8, 1), layers)
    task = fj.data.images("digits", limit=64, test_limit=32)
    res = fj.sweep(model, task, rule=rule, seeds=2, steps=4, eval_every=2, batch_size=16, progress=False,
                   diagnostics=not bn)
    assert res.test_acc.shape == (2, 2) and np.isfinite(res.loss).all() and np.isfinite(res.test_loss).all()
    assert [tuple(B.shape[1:]) for B in res.state.feedback] == [s for s in
                                                                 fj.rules.get(rule).feedback_shapes(model)]
