"""Alignment angles and norms: the angle helper, exact 0° cases (float64), numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg


def _np_angle(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return np.degrees(np.arccos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1)))


def _setup(keys, sizes, rule, activation="tanh", n=13, loss="softmax_ce"):
    k1, k2, k3, k4 = keys(4)
    model = fj.mlp(sizes, activation=activation, init="glorot_normal")
    params = model.init(k1, jnp.float64)
    fb = fj.init_feedback(k2, model, rule, dtype=jnp.float64)
    x = jax.random.normal(k3, (n, sizes[0]), jnp.float64)
    y = jax.random.randint(k4, (n,), 0, sizes[-1]) if sizes[-1] > 1 else jax.random.rademacher(k4, (n,), jnp.float64)
    return model, params, fb, x, y, fj.losses.get(loss)


def test_angle_helper_orthogonal_opposite_parallel(x64):
    a = jnp.array([[1.0, 2.0], [0.0, -1.0]])
    b = jnp.array([[2.0, -1.0], [0.0, 0.0]])  # <a, b> = 0
    assert float(dg.angle_deg(a, b)) == pytest.approx(90.0, abs=1e-12)
    assert float(dg.angle_deg(a, -3 * a)) == pytest.approx(180.0, abs=1e-6)
    assert float(dg.angle_deg(a, 5 * a)) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(float(dg.angle_deg(a, jnp.zeros_like(a))))
    rows = dg.angle_deg(a, b.at[1, 1].set(1.0), axis=1)  # per row
    np.testing.assert_allclose(rows, [90.0, 180.0], atol=1e-6)


def test_angle_helper_matches_numpy(x64, keys):
    k1, k2 = keys(2)
    a, b = jax.random.normal(k1, (6, 5), jnp.float64), jax.random.normal(k2, (6, 5), jnp.float64)
    assert float(dg.angle_deg(a, b)) == pytest.approx(_np_angle(a, b), abs=1e-10)


@pytest.mark.parametrize("jit", [True])
def test_bp_gradient_alignment_is_zero(x64, keys, jit):
    model, params, _, x, y, loss = _setup(keys, [5, 8, 7, 6, 3], "bp")
    f = lambda p: dg.diagnose(model, "bp", loss, p, None, x, y)
    out = (jax.jit(f) if jit else f)(params)
    assert out["grad_alignment_deg"].shape == (4,) and out["signal_alignment_deg"].shape == (3,)
    np.testing.assert_allclose(out["grad_alignment_deg"], 0.0, atol=1e-5)
    np.testing.assert_allclose(out["signal_alignment_deg"], 0.0, atol=1e-5)
    assert "weight_alignment_deg" not in out


def test_fa_with_B_equal_W_is_zero_everywhere(x64, keys):
    model, params, _, x, y, loss = _setup(keys, [5, 8, 7, 6, 3], "fa")
    out = dg.diagnose(model, "fa", loss, params, [p["w"] for p in params], x, y)
    for k in ("grad_alignment_deg", "signal_alignment_deg", "weight_alignment_deg"):
        np.testing.assert_allclose(out[k], 0.0, atol=1e-5, err_msg=k)
    assert out["weight_alignment_deg"].shape == (3,)


def test_dfa_one_hidden_layer_with_B_equal_W2T_is_zero(x64, keys):
    model, params, _, x, y, loss = _setup(keys, [5, 8, 3], "dfa")
    out = dg.diagnose(model, "dfa", loss, params, [params[1]["w"].T], x, y)
    for k in ("grad_alignment_deg", "signal_alignment_deg", "weight_alignment_deg"):
        np.testing.assert_allclose(out[k], 0.0, atol=1e-5, err_msg=k)


def test_weight_alignment_matches_numpy(x64, keys):
    sizes = [5, 8, 7, 6, 3]
    model, params, fb_fa, *_ = _setup(keys, sizes, "fa")
    ws = [np.asarray(p["w"]) for p in params]
    got = dg.weight_alignment("fa", params, fb_fa)
    np.testing.assert_allclose(got, [_np_angle(ws[i], np.asarray(fb_fa[i])) for i in (1, 2, 3)], atol=1e-9)
    fb_dfa = fj.init_feedback(keys(1)[0], model, "dfa", dtype=jnp.float64)
    want = [_np_angle(np.asarray(fb_dfa[l]), np.linalg.multi_dot(ws[l + 1:] + [np.eye(3)]).T) for l in range(3)]
    np.testing.assert_allclose(dg.weight_alignment("dfa", params, fb_dfa), want, atol=1e-9)
    assert dg.weight_alignment("bp", params, None) is None


def test_dfa_signal_alignment_matches_numpy_backprop(x64, keys):
    """tanh net, mse loss: e = 2 (y - t) / n; true dL/dh_l by hand; DFA sends e @ B_l."""
    model, params, fb, x, y, _ = _setup(keys, [4, 6, 5, 3], "dfa", loss="mse")
    loss = fj.losses.get("mse")
    ws, bs = [np.asarray(p["w"]) for p in params], [np.asarray(p["b"]) for p in params]
    h0 = np.asarray(x)
    h1 = np.tanh(h0 @ ws[0] + bs[0])
    h2 = np.tanh(h1 @ ws[1] + bs[1])
    out = h2 @ ws[2] + bs[2]
    t = np.eye(3)[np.asarray(y)]
    e = 2 * (out - t) / len(h0)
    d2 = e @ ws[2].T
    d1 = (d2 * (1 - h2**2)) @ ws[1].T
    want = [np.mean([_np_angle(s[i], (e @ np.asarray(B))[i]) for i in range(len(h0))])
            for s, B in ((d1, fb[0]), (d2, fb[1]))]
    got = dg.diagnose(model, "dfa", loss, params, fb, x, y)
    np.testing.assert_allclose(got["signal_alignment_deg"], want, atol=1e-8)
    g_w1 = h0.T @ (d1 * (1 - h1**2))
    g_dfa = h0.T @ ((e @ np.asarray(fb[0])) * (1 - h1**2))
    assert float(got["grad_alignment_deg"][0]) == pytest.approx(_np_angle(g_dfa, g_w1), abs=1e-8)
    np.testing.assert_allclose(got["weight_norm"], [np.linalg.norm(w) for w in ws], rtol=1e-12)


def test_sweep_diagnostics_rows_and_unchanged_training():
    task, model = fj.data.parity(6, 2), fj.mlp([6, 16, 12, 1])
    kw = dict(seeds=2, steps=40, batch_size=16, eval_every=20, progress=False)
    on = fj.sweep(model, task, rule="fa", diagnostics=True, **kw)
    off = fj.sweep(model, task, rule="fa", **kw)
    np.testing.assert_array_equal(on.loss, off.loss)  # the diagnostic batch uses its own key
    assert off.diagnostics is None and "grad_alignment_deg" not in off.metric_rows()[0]
    assert on.diagnostics["grad_alignment_deg"].shape == (2, 2, 3)
    row = on.metric_rows()[0]
    assert len(row["grad_alignment_deg"]) == 3 and len(row["grad_norm"]) == 3 and len(row["weight_norm"]) == 3
    assert len(row["weight_alignment_deg"]) == 2 and len(row["signal_alignment_deg"]) == 2
    assert all(0 <= a <= 180 for a in row["grad_alignment_deg"]) and row["grad_alignment_deg"][-1] < 1.0


def test_bad_diagnostics_flag():
    with pytest.raises(ValueError, match="diagnostics must be True or False, got 'yes'"):
        fj.sweep(fj.mlp([6, 4, 1]), fj.data.parity(6, 2), diagnostics="yes", steps=10, eval_every=10)
