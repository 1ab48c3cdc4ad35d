"""The FA family (fa, usf, frsf, brsf, kp, wm) on conv nets, float64: B equal to the kernel is BP on a
conv / strided-conv / transposed-conv net and on tiny ResNets (SkipInit and batch norm), the conv's
input receives vjp of the conv with B in place of the kernel, weight_alignment is angle(W, B_used),
wm turns B towards a frozen kernel, and short sweeps on digits (kp(lam=1; b0=w) is bp's sweep)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg
from fa_jax.models.init import fans

TOL = dict(rtol=1e-10, atol=1e-12)
FA_FAMILY = ["fa", "usf", "frsf", "brsf", "kp", "wm"]
DN = ("NHWC", "HWIO", "NHWC")
# conv (6x6x3) -> stride-2 conv (3x3x4) -> transposed conv, stride 2 (6x6x2) -> flatten -> dense
CONV = ["conv(3,3)", "tanh", "conv(4,3,stride=2)", "relu", "conv_transpose(2,3,stride=2)", "tanh", "flatten",
        "dense(5)"]
MODELS = {
    "conv": lambda: fj.cnn.sequential((6, 6, 2), CONV),
    "resnet": lambda: fj.cnn.get("resnet20", (8, 8, 1), 10, depth=8, width=2, norm="none"),
    "resnet_bn": lambda: fj.cnn.get("resnet20", (8, 8, 1), 10, depth=8, width=2, norm="batch"),
}


def _s(w):
    """usf's scale s = 1 / sqrt(fan_in) of a kernel."""
    return 1.0 / np.sqrt(fans(w.shape)[0])


def _setup(keys, name):
    k1, k2, k3 = keys(3)
    model = MODELS[name]()
    params = model.init(k1, jnp.float64)
    # SkipInit gains start at 0 (no signal through a block's branch): make them nonzero
    params = [{**p, "gain": jnp.asarray(0.7, jnp.float64)} if "gain" in p else p for p in params]
    x = jax.random.normal(k2, (4,) + model.input_shape, jnp.float64)
    y = jax.random.randint(k3, (4,), 0, model.n_out)
    return model, params, x, y


def _loss(model, rule, fb, x, y):
    def f(p, x_):
        if model.stateful:
            logits, _ = model.apply(p, x_, rule=rule, feedback=fb, stats=model.init_stats(jnp.float64), train=True)
        else:
            logits = model.apply(p, x_, rule=rule, feedback=fb)
        return fj.losses.softmax_ce(logits, y)
    return f


def _grads(model, params, x, y, rule, fb):
    """dL/d(params, x) of the wiring of ``rule``."""
    return jax.grad(_loss(model, rule, fb, x, y), argnums=(0, 1))(params, x)


def _b_equal_w(rule, params):
    """(params, feedback) at which the rule's backward matrix is each layer's kernel."""
    if rule == "usf":
        return [{**p, "w": _s(p["w"]) * jnp.sign(p["w"])} for p in params], None
    if rule in ("frsf", "brsf"):
        return params, [jnp.abs(p["w"]) for p in params]
    return params, [p["w"] for p in params]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("rule", FA_FAMILY)
def test_backward_matrix_equal_to_the_kernel_is_bp(x64, keys, rule, name):
    """B_used = W on every conv, transposed conv, residual half and dense layer: grad_rule = grad_bp
    for every param and for the input."""
    model, params, x, y = _setup(keys, name)
    params, fb = _b_equal_w(rule, params)
    chex.assert_trees_all_close(_grads(model, params, x, y, rule, fb), _grads(model, params, x, y, "bp", None),
                                **TOL)


@pytest.mark.parametrize("name", list(MODELS))
def test_random_feedback_is_not_bp_on_conv_layers(x64, keys, name):
    """Negative control: FA with random B changes the conv kernels' gradients (all but the last layer)."""
    model, params, x, y = _setup(keys, name)
    fb = fj.init_feedback(keys(4)[3], model, "fa", dtype=jnp.float64)
    (g_fa, _), (g_bp, _) = _grads(model, params, x, y, "fa", fb), _grads(model, params, x, y, "bp", None)
    for l in range(len(params) - 1):
        assert params[l]["w"].ndim == 4
        assert not np.allclose(g_fa[l]["w"], g_bp[l]["w"], rtol=1e-3), l
    np.testing.assert_allclose(g_fa[-1]["w"], g_bp[-1]["w"], **TOL)  # the output layer: true gradient


def _conv(h, w, stride=(1, 1)):
    return jax.lax.conv_general_dilated(h, w, stride, "SAME", dimension_numbers=DN)


def _conv_t(h, w):
    return jax.lax.conv_transpose(h, w, (2, 2), "SAME", dimension_numbers=DN)


@pytest.mark.parametrize("rule", ["fa", "usf"])
def test_conv_inputs_receive_the_vjp_of_the_conv_with_B(x64, keys, rule):
    """By hand with lax: delta_{l-1} = f'(z) * vjp_h conv(., B_l)(delta_l) through conv_transpose, the
    stride-2 conv and the first conv (dL/dx); each kernel gets vjp_w conv(h, .)(delta_l) at that delta."""
    model, params, x, y = _setup(keys, "conv")
    fb = fj.init_feedback(keys(5)[4], model, "fa", dtype=jnp.float64) if rule == "fa" else None
    Bs = fb if rule == "fa" else [_s(p["w"]) * jnp.sign(p["w"]) for p in params]
    w = [p["w"] for p in params]
    maps = [_conv, lambda h, k: _conv(h, k, (2, 2)), _conv_t]
    acts = [jnp.tanh, jax.nn.relu, jnp.tanh]
    hs, zs = [x], []
    for f, a, p in zip(maps, acts, params):
        zs.append(f(hs[-1], p["w"]) + p["b"])
        hs.append(a(zs[-1]))
    flat = hs[-1].reshape(len(x), -1)
    e = jax.grad(lambda out: fj.losses.softmax_ce(out, y))(flat @ w[3] + params[3]["b"])
    want_w = [None, None, None, flat.T @ e]
    dh = (e @ Bs[3].T).reshape(hs[-1].shape)
    for l in (2, 1, 0):
        dz = jax.vjp(acts[l], zs[l])[1](dh)[0]
        want_w[l] = jax.vjp(lambda k, l=l: maps[l](hs[l], k), w[l])[1](dz)[0]
        dh = jax.vjp(lambda h, l=l: maps[l](h, Bs[l]), hs[l])[1](dz)[0]
    g, gx = _grads(model, params, x, y, rule, fb)
    np.testing.assert_allclose(gx, dh, **TOL)
    for l in range(4):
        np.testing.assert_allclose(g[l]["w"], want_w[l], **TOL)
    assert not np.allclose(gx, _grads(model, params, x, y, "bp", None)[1], rtol=1e-3)


def _used(rule, params, fb):
    """B_used per layer, by the rules' formulas (module docs)."""
    if rule == "usf":
        return [_s(p["w"]) * np.sign(p["w"]) for p in params]
    if rule in ("frsf", "brsf"):
        return [np.abs(M) * np.sign(p["w"]) for p, M in zip(params, fb)]
    return fb


def _angle(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


@pytest.mark.parametrize("rule", FA_FAMILY)
def test_weight_alignment_on_a_conv_net_is_angle_of_W_and_B_used(x64, keys, rule):
    """weight_alignment_deg[l] = angle(W_{l+1}, B_used_{l+1}) for kernels (4-D) and the dense layer."""
    model, params, x, y = _setup(keys, "conv")
    fb = fj.init_feedback(keys(6)[5], model, rule, dtype=jnp.float64)
    wa = dg.weight_alignment(rule, params, fb)
    want = [_angle(p["w"], B) for p, B in zip(params[1:], _used(rule, params, fb)[1:])]
    assert wa.shape == (3,) and np.isfinite(wa).all()
    np.testing.assert_allclose(wa, want, atol=1e-9)
    np.testing.assert_allclose(dg.diagnose(model, rule, fj.losses.softmax_ce, params, fb, x, y)
                               ["weight_alignment_deg"], want, atol=1e-9)


def test_wm_with_kernels_frozen_turns_each_B_towards_its_kernel(keys):
    """Repeated mirror updates with zero updates: angle(W_l, B_l) falls from ~90 deg to a few degrees
    for every layer (conv, strided conv, transposed conv, dense)."""
    k1, k2, k3 = keys(3)
    model = fj.cnn.sequential((4, 4, 1), ["conv(2,3)", "tanh", "conv(2,3,stride=2)", "tanh",
                                          "conv_transpose(1,3,stride=2)", "flatten", "dense(3)"])
    params = model.init(k1)
    fb = fj.init_feedback(k2, model, "wm")
    zero = jax.tree.map(jnp.zeros_like, params)
    hook = jax.jit(fj.rules.get("wm").update_feedback)
    angles = []
    for k in jax.random.split(k3, 200):
        angles.append([_angle(p["w"], B) for p, B in zip(params, fb)])
        params, fb = hook(params, fb, zero, k)
    angles = np.asarray(angles)  # (200, 4)
    assert (angles[0] > 60).all(), angles[0]
    assert (np.diff(angles[[0, 5, 10, 20]], axis=0) < 0).all(), angles[[0, 5, 10, 20]]
    assert (angles[-80:].mean(0) < 7).all(), angles[-80:].mean(0)


SWEEP_NET = ["conv(2,3,stride=2)", "tanh", "flatten", "dense(10)"]
SWEEP_KW = dict(seeds=2, steps=20, batch_size=16, eval_every=20, progress=False)


@pytest.fixture(scope="module")
def digits():
    return fj.cnn.sequential((8, 8, 1), SWEEP_NET), fj.data.images("digits", limit=64, test_limit=32)


@pytest.mark.parametrize("rule", ["usf", "frsf", "brsf", "kp", "wm", "drtp", "sdfa"])
def test_short_conv_sweeps_are_finite_with_diagnostics(digits, rule):
    model, task = digits
    res = fj.sweep(model, task, rule=rule, diagnostics=True, **SWEEP_KW)
    assert np.isfinite(res.loss).all() and np.isfinite(res.test_loss).all()
    ga = res.diagnostics["grad_alignment_deg"]
    assert ga.shape == (2, 1, 2) and np.isfinite(ga).all(), ga
    if rule in FA_FAMILY:
        assert np.isfinite(res.diagnostics["weight_alignment_deg"]).all()


def test_kp_without_decay_started_at_W_is_bps_sweep_on_a_conv_net(digits):
    """kp(lam=1; b0=w) with sgd: W and B take the same update, so B = W and the run is BP's (float32
    sweeps, as in test_kolen_pollack.py)."""
    model, task = digits
    kw = dict(SWEEP_KW, optimizer="sgd", lr=0.1)
    kp, bp = fj.sweep(model, task, rule="kp(lam=1.0; b0=w)", **kw), fj.sweep(model, task, rule="bp", **kw)
    np.testing.assert_allclose(kp.loss, bp.loss, rtol=1e-5, atol=1e-7)
    for a, b in zip(jax.tree.leaves(kp.state.params), jax.tree.leaves(bp.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for p, B in zip(kp.state.params, kp.state.feedback):
        np.testing.assert_array_equal(p["w"], B)
    assert not np.allclose(kp.state.params[0]["w"][0], kp.state.params[0]["w"][1])  # two different seeds
