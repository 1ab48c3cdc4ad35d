"""Conv models under BP / FA / DFA: float64 exactness against identities and jax.numpy references."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.models import cnn

TOL = dict(rtol=1e-10, atol=1e-12)


def _data(key, shape, n=5, n_out=3):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, *shape), jnp.float64), jax.random.randint(ky, (n,), 0, n_out)


def _grads(model, params, x, y, rule, fb, jit=False, wrt_x=False):
    f = lambda p, x_: fj.losses.softmax_ce(model.apply(p, x_, rule=rule, feedback=fb), y)
    g = jax.grad(f, argnums=(0, 1) if wrt_x else 0)
    return (jax.jit(g) if jit else g)(params, x)


# --- references written with jax.numpy slicing (no lax conv / reduce_window) -------------------

def ref_conv(x, w, stride=1, dil=1):
    """VALID cross-correlation, NHWC x HWIO, as sums of strided slices."""
    kh, kw = w.shape[:2]
    ho = (x.shape[1] - dil * (kh - 1) - 1) // stride + 1
    wo = (x.shape[2] - dil * (kw - 1) - 1) // stride + 1
    out = 0.0
    for a in range(kh):
        for b in range(kw):
            patch = x[:, a * dil: a * dil + stride * (ho - 1) + 1: stride, b * dil: b * dil + stride * (wo - 1) + 1: stride]
            out = out + jnp.einsum("nhwc,co->nhwo", patch, w[a, b])
    return out


def ref_conv_transpose(x, w, stride):
    """VALID transposed conv: scatter every input pixel times the kernel into the output."""
    n, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    out = jnp.zeros((n, (h - 1) * stride + kh, (wd - 1) * stride + kw, co), x.dtype)
    for a in range(kh):
        for b in range(kw):
            contrib = jnp.einsum("nhwc,co->nhwo", x, w[kh - 1 - a, kw - 1 - b])
            out = out.at[:, a: a + stride * (h - 1) + 1: stride, b: b + stride * (wd - 1) + 1: stride].add(contrib)
    return out


def ref_pool(x, k, s, reduce):
    ho, wo = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    win = [x[:, a: a + s * (ho - 1) + 1: s, b: b + s * (wo - 1) + 1: s] for a in range(k) for b in range(k)]
    return reduce(jnp.stack(win), axis=0)


MIXED = ["conv_transpose(3,3,stride=2,padding=VALID)", "tanh", "maxpool(2)",
         "conv(4,3,stride=2,padding=VALID,dilation=1)", "relu", "avgpool(2,1)", "flatten", "dense(5)", "tanh",
         "dense(3)"]


def _mixed_ref(p, x):
    h = jnp.tanh(ref_conv_transpose(x, p[0]["w"], 2) + p[0]["b"])
    h = ref_pool(h, 2, 2, jnp.max)
    h = jax.nn.relu(ref_conv(h, p[1]["w"], 2) + p[1]["b"])
    h = ref_pool(h, 2, 1, jnp.mean).reshape(x.shape[0], -1)
    h = jnp.tanh(h @ p[2]["w"] + p[2]["b"])
    return h @ p[3]["w"] + p[3]["b"]


def test_pool_and_transposed_conv_bp_grads_match_jnp_reference(x64, keys):
    k1, k2 = keys(2)
    model = fj.cnn.sequential((5, 5, 2), MIXED, init="glorot_normal")
    assert model.hidden_shapes == [(5, 5, 3), (1, 1, 4), (5,)]  # 5 -> 11 -> pool 5; conv 2 -> avgpool 1
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, (5, 5, 2))
    chex.assert_trees_all_close(model.apply(params, x), _mixed_ref(params, x), **TOL)
    want = jax.grad(lambda p, x_: fj.losses.softmax_ce(_mixed_ref(p, x_), y), argnums=(0, 1))(params, x)
    chex.assert_trees_all_close(_grads(model, params, x, y, "bp", None, True, wrt_x=True), want, **TOL)


def test_dilated_strided_conv_matches_reference(x64, keys):
    k1, k2 = keys(2)
    model = fj.cnn.sequential((9, 9, 2), ["conv(3,3,stride=2,padding=VALID,dilation=2)", "flatten", "dense(3)"])
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, (9, 9, 2))
    ref = lambda p: (ref_conv(x, p[0]["w"], 2, 2) + p[0]["b"]).reshape(5, -1) @ p[1]["w"] + p[1]["b"]
    chex.assert_trees_all_close(model.apply(params, x), ref(params), **TOL)
    chex.assert_trees_all_close(_grads(model, params, x, y, "bp", None, jit=True),
                                jax.jit(jax.grad(lambda p: fj.losses.softmax_ce(ref(p), y)))(params), **TOL)


def test_conv_fa_with_B_equal_W_is_bp(x64, keys):
    k1, k2 = keys(2)
    model = fj.cnn.sequential((6, 6, 2), ["conv(4,3)", "tanh", "conv_transpose(3,3,stride=2)", "maxpool(2)",
                                          "conv(5,3,stride=2)", "relu", "flatten", "dense(6)", "tanh", "dense(3)"])
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, (6, 6, 2))
    fb = [p["w"] for p in params]
    chex.assert_trees_all_close(_grads(model, params, x, y, "fa", fb, True, wrt_x=True),
                                _grads(model, params, x, y, "bp", None, True, wrt_x=True), **TOL)


def test_conv_fa_sends_the_B_convolution_downstream(x64, keys):
    """FA's input cotangent of a conv is the (reference) conv VJP evaluated with B; the kernel's is true."""
    k1, k2, k3 = keys(3)
    model = fj.cnn.sequential((7, 7, 2), ["conv(3,3,stride=2,padding=VALID)", "flatten", "dense(3)"])
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, (7, 7, 2))
    fb = fj.init_feedback(k3, model, "fa", dtype=jnp.float64)
    assert [B.shape for B in fb] == [(3, 3, 2, 3), (27, 3)]
    g_fa, gx_fa = _grads(model, params, x, y, "fa", fb, wrt_x=True)
    g_bp = _grads(model, params, x, y, "bp", None)
    chex.assert_trees_all_close(g_fa[1], g_bp[1], **TOL)  # output layer: true gradient
    h = ref_conv(x, params[0]["w"], 2) + params[0]["b"]
    e = jax.grad(lambda z: fj.losses.softmax_ce(z, y))(h.reshape(5, -1) @ params[1]["w"] + params[1]["b"])
    dh = (e @ fb[1].T).reshape(h.shape)  # dense FA, then reference conv VJPs
    # true kernel grad
    chex.assert_trees_all_close(g_fa[0]["w"], jax.vjp(lambda w_: ref_conv(x, w_, 2), params[0]["w"])[1](dh)[0], **TOL)
    chex.assert_trees_all_close(g_fa[0]["b"], dh.sum((0, 1, 2)), **TOL)
    # input gets the B convolution
    chex.assert_trees_all_close(gx_fa, jax.vjp(lambda x_: ref_conv(x_, fb[0], 2), x)[1](dh)[0], **TOL)
    assert not np.allclose(gx_fa, jax.grad(lambda x_: fj.losses.softmax_ce(model.apply(params, x_), y))(x))


@pytest.mark.parametrize("jit", [False, True])
def test_one_hidden_block_conv_dfa_with_matching_B_is_bp(x64, keys, jit):
    k1, k2 = keys(2)
    model = fj.cnn.sequential((6, 6, 1), ["conv(4,3)", "relu", "maxpool(2)", "flatten", "dense(3)"])
    assert model.hidden_shapes == [(3, 3, 4)]
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, (6, 6, 1))
    fb = [params[1]["w"].T]  # (n_out, H*W*C): the true d y / d h_1, row-major as the reshape
    chex.assert_trees_all_close(_grads(model, params, x, y, "dfa", fb, jit),
                                _grads(model, params, x, y, "bp", None, jit), **TOL)


def test_dfa_signal_reaches_every_conv_block_as_one_matmul(x64, keys):
    """With identity activations, a hidden conv's bias gradient under DFA is sum over batch and
    space of (e @ B_l) reshaped to (H, W, C)."""
    k1, k2, k3 = keys(3)
    model = fj.cnn.sequential((6, 6, 2), ["conv(3,3)", "conv(4,3,stride=2)", "flatten", "dense(3)"])
    params = model.init(k1, jnp.float64)
    x, y = _data(k2, (6, 6, 2))
    fb = fj.init_feedback(k3, model, "dfa", dtype=jnp.float64)
    assert [B.shape for B in fb] == [(3, 108), (3, 36)]
    e = jax.grad(lambda z: fj.losses.softmax_ce(z, y))(model.apply(params, x))
    g = _grads(model, params, x, y, "dfa", fb)
    for l, shape in enumerate(model.hidden_shapes):
        np.testing.assert_allclose(g[l]["b"], (e @ fb[l]).reshape(5, *shape).sum((0, 1, 2)), **TOL)


def test_fa_feedback_for_conv_kernels_uses_receptive_fan_in(keys):
    model = fj.cnn.sequential((8, 8, 3), ["conv(16,5)", "flatten", "dense(10)"])
    fb = fj.init_feedback(keys(1)[0], model, "fa", dist="normal")
    np.testing.assert_allclose(float(fb[0].std()), 1 / np.sqrt(5 * 5 * 3), rtol=0.05)


@pytest.mark.parametrize("spec,shape", [("conv(2,3,stride=2)", (7, 7, 3)), ("conv(2,3,stride=2,padding=VALID)", (7, 7, 3)),
                                        ("conv(2,3,dilation=2,padding=VALID)", (7, 7, 3)),
                                        ("conv_transpose(2,3,stride=2)", (7, 7, 3)),
                                        ("conv_transpose(2,3,stride=2,padding=VALID)", (7, 7, 3)),
                                        ("maxpool(3,2,padding=SAME)", (7, 7, 3)), ("avgpool(3)", (7, 7, 3))])
def test_shape_inference_matches_lax(spec, shape):
    layer = cnn.parse_layer(spec)
    p = layer.init(jax.random.key(0), shape, "he_uniform", jnp.float32) if layer.weighted else None
    x = jnp.zeros((2, *shape))
    got = jax.eval_shape(lambda x_: layer.apply(p, x_, fj.rules.linear) if layer.weighted else layer.apply(x_), x)
    assert got.shape[1:] == layer.out_shape(shape)


def test_resnet_blocks_start_as_identity(keys):
    """SkipInit gain 0 and option-A shortcuts: at init every residual block passes its input through."""
    k1, k2 = keys(2)
    model = fj.cnn.resnet((8, 8, 1), 10, depth=8, width=4, norm="none")
    params = model.init(k1)
    assert len(model.blocks) == 8 and model.hidden_shapes[1] == (8, 8, 8) and model.hidden_shapes[-1] == (16,)
    x = jax.random.normal(k2, (3, 8, 8, 1))
    h0 = jax.nn.relu(jax.lax.conv_general_dilated(x, params[0]["w"], (1, 1), "SAME",
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC")) + params[0]["b"])
    h = h0[:, ::4, ::4, :]  # two stride-2 stages subsample; channels zero-padded 4 -> 16
    pooled = jnp.pad(h, ((0, 0), (0, 0), (0, 0), (0, 12))).mean((1, 2))
    np.testing.assert_allclose(jax.jit(model.apply)(params, x), pooled @ params[-1]["w"] + params[-1]["b"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,norm", [(n, None) for n in cnn.MODELS] + [("resnet20", "none")])
def test_named_models_train_one_step_under_every_rule(name, norm, keys):
    small = {"resnet20": {"depth": 8, "width": 2}, "mlp": {"hidden": (8,)}}.get(name, {"width": 0.125})
    model = fj.cnn.get(name, (8, 8, 1), 10, **small, **({} if norm is None else {"norm": norm}))
    assert model.stateful == (name == "resnet20" and norm is None)  # resnet20 has batch norm by default
    params = model.init(keys(1)[0])
    x = jax.random.normal(keys(2)[1], (4, 8, 8, 1))
    kw = {"stats": model.init_stats(), "train": True} if model.stateful else {}

    def logits(p, r, f):
        out = model.apply(p, x, rule=r, feedback=f, **kw)
        return out[0] if model.stateful else out

    @jax.jit
    def grads(p, fbs):
        return [jax.grad(lambda p_: fj.losses.softmax_ce(logits(p_, r, f), jnp.arange(4)))(p)
                for r, f in zip(("bp", "fa", "dfa"), fbs)]

    fbs = [fj.init_feedback(jax.random.key(1), model, r) for r in ("bp", "fa", "dfa")]
    for g in grads(params, fbs):
        assert all(np.isfinite(v).all() for v in jax.tree.leaves(g))


def test_lecture_net_valid_padding_is_the_lectures_mnist_net():
    m = fj.cnn.lecture_cnn((28, 28, 1), padding="VALID")
    assert m.hidden_shapes == [(8, 8, 32), (2, 2, 64), (200,)]
    assert m.weight_shapes == [(5, 5, 1, 32), (5, 5, 32, 64), (256, 200), (200, 10)]


@pytest.mark.parametrize("build,match", [
    (lambda: fj.cnn.sequential((8, 8, 1), ["convv(3)", "flatten", "dense(2)"]), r"unknown layer 'convv\(3\)'; known: avgpool"),
    (lambda: fj.cnn.sequential((4, 4, 1), ["conv(3,5,padding=VALID)", "flatten", "dense(2)"]),
     r"conv kernel \(5, 5\) .* does not fit the 4x4 input"),
    (lambda: fj.cnn.sequential((4, 4, 1), ["maxpool(5)", "conv(2,1)", "flatten", "dense(2)"]), r"maxpool kernel \(5, 5\)"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(3,3,stride=0)", "flatten", "dense(2)"]), r"conv stride must be a positive"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(3)", "dense(2)"]), r"dense needs a flat input, got shape \(8, 8, 3\)"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(3)", "relu"]), "end with flatten/global_avgpool and a dense"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(3,3,padding=FULL)", "flatten", "dense(2)"]), r"unknown padding 'FULL'"),
    (lambda: fj.cnn.sequential((8, 8), ["flatten", "dense(2)"]), r"input_shape must be \(H, W, C\)"),
    (lambda: fj.cnn.get("vgg", (8, 8, 1), 10), r"unknown model 'vgg'; known: allconv, lecture_cnn, mlp, resnet20"),
    (lambda: fj.cnn.resnet(depth=21), "resnet depth must be 6n"),
])
def test_bad_models_fail_in_one_line_at_build(build, match):
    with pytest.raises(ValueError, match=match) as err:
        build()
    assert "\n" not in str(err.value)


def test_bad_inputs_fail_before_compilation(keys):
    model = fj.cnn.lecture_cnn((8, 8, 3), width=0.25)
    params = model.init(keys(1)[0])
    with pytest.raises(ValueError, match=r"input has shape \(2, 3, 8, 8\).*looks like NCHW"):
        jax.jit(lambda p, x: model.apply(p, x))(params, jnp.ones((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"flat: use x.reshape\(-1, 8, 8, 3\)"):
        model.apply(params, jnp.ones((2, 192)))
    with pytest.raises(ValueError, match=r"feedback\[0\] has shape \(5, 5, 3, 9\), expected \(5, 5, 3, 8\)"):
        model.apply(params, jnp.ones((2, 8, 8, 3)), rule="fa", feedback=[jnp.ones((5, 5, 3, 9))] + [None] * 3)
    with pytest.raises(ValueError, match=r"model input shape \(8, 8, 3\) does not match task 'digits-class' input shape \(64,\)"):
        fj.sweep(model, fj.data.digits(), steps=10, eval_every=10)


def test_feedback_schemes_refuse_conv_kernels():
    import jax
    import pytest as _pytest
    import fa_jax as fj
    model = fj.cnn.sequential((8, 8, 1), ["conv(4,3)", "relu", "flatten", "dense(10)"])
    with _pytest.raises(ValueError, match="scheme 'akrout' is defined for dense layers"):
        fj.init_feedback(jax.random.key(0), model, "fa", scheme="akrout")
    assert len(fj.init_feedback(jax.random.key(0), model, "dfa", scheme="akrout")) == 1  # DFA B is 2-D


def test_diagnostics_on_a_conv_net(x64):
    """BP is 0° from itself and FA with B = W is 0° from BP, through conv blocks."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import fa_jax as fj
    from fa_jax.analysis.diagnostics import diagnose
    model = fj.cnn.sequential((6, 6, 1), ["conv(3,3)", "tanh", "conv(2,3)", "tanh", "flatten", "dense(4)"])
    params = model.init(jax.random.key(0), jnp.float64)
    x = jax.random.normal(jax.random.key(1), (5, 6, 6, 1), jnp.float64)
    y = jnp.arange(5) % 4
    for rule, fb in (("bp", None), ("fa", [p["w"] for p in params])):
        d = jax.jit(lambda p, f, r=rule: diagnose(model, r, fj.losses.softmax_ce, p, f, x, y))(params, fb)
        np.testing.assert_allclose(d["grad_alignment_deg"], 0.0, atol=1e-5)
        np.testing.assert_allclose(d["signal_alignment_deg"], 0.0, atol=1e-5)
