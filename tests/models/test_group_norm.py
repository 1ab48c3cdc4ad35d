"""Group, layer and instance norm (fj.norm.group_norm, the groupnorm/layernorm/instancenorm layers,
resnet(norm=), norm_mlp(norm="group")) under BP / FA / DFA, in float64 against references
written with jax.numpy slicing."""

import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.models import norm
from fa_jax.models.norm_mlp import norm_mlp

TOL = dict(rtol=1e-10, atol=1e-12)
EPS = 1e-5


# --- references ---------------------------------------------------------------------------------

def ref_group_norm(a, p, groups):
    """Per example, each run of C/groups consecutive channels normalized over itself and every
    spatial axis (biased variance), one slice at a time; then per-channel scale and shift."""
    k = a.shape[-1] // groups
    axes = tuple(range(1, a.ndim))
    parts = []
    for g in range(groups):
        blk = a[..., g * k: (g + 1) * k]
        mu = blk.mean(axes, keepdims=True)
        var = ((blk - mu) ** 2).mean(axes, keepdims=True)
        parts.append((blk - mu) / jnp.sqrt(var + EPS))
    return jnp.concatenate(parts, -1) * p["scale"] + p["shift"]


def ref_conv(x, w, stride=1, padding="VALID"):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _affine(key, c):
    k1, k2 = jax.random.split(key)
    return {"scale": 1 + 0.3 * jax.random.normal(k1, (c,), jnp.float64),
            "shift": 0.2 * jax.random.normal(k2, (c,), jnp.float64)}


# --- the functions ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,groups", [((3, 4, 5, 8), 1), ((3, 4, 5, 8), 2), ((3, 4, 5, 8), 4),
                                          ((3, 4, 5, 8), 8), ((3, 6), 3), ((2, 3, 6), 2)])
def test_group_norm_matches_reference(x64, keys, shape, groups):
    k1, k2 = keys(2)
    a = jax.random.normal(k1, shape, jnp.float64) * 3 + jnp.arange(shape[-1])  # channels with different means
    p = _affine(k2, shape[-1])
    chex.assert_trees_all_close(norm.group_norm(a, p, groups), ref_group_norm(a, p, groups), **TOL)
    one = norm.group_norm(a[:1], p, groups)  # per example: independent of the rest of the batch
    chex.assert_trees_all_close(one, norm.group_norm(a, p, groups)[:1], **TOL)


def test_one_group_is_layer_norm_over_hwc_and_c_groups_is_instance_norm(x64, keys):
    k1, k2 = keys(2)
    a = jax.random.normal(k1, (3, 4, 5, 6), jnp.float64) * 2 + 1
    p = _affine(k2, 6)
    mu, var = a.mean((1, 2, 3), keepdims=True), a.var((1, 2, 3), keepdims=True)
    chex.assert_trees_all_close(norm.group_norm(a, p, 1), (a - mu) / jnp.sqrt(var + EPS) * p["scale"] + p["shift"],
                                **TOL)
    mu, var = a.mean((1, 2), keepdims=True), a.var((1, 2), keepdims=True)
    inst = (a - mu) / jnp.sqrt(var + EPS) * p["scale"] + p["shift"]
    chex.assert_trees_all_close(norm.instance_norm(a, p), inst, **TOL)
    chex.assert_trees_all_close(norm.group_norm(a, p, 6), inst, **TOL)
    flat = a.reshape(3, -1)[:, :6]  # on (batch, C) one group is layer_norm
    chex.assert_trees_all_close(norm.group_norm(flat, p, 1), norm.layer_norm(flat, p), **TOL)


# --- conv models under every rule ---------------------------------------------------------------

CONV_NORM = {"layer": ("layernorm", 1), "instance": ("instancenorm", 4), "group": ("groupnorm(2)", 2)}
FLAT_NORM = {"layer": ("layernorm", 1), "instance": None, "group": ("groupnorm(3)", 3)}  # 6 features


def net(kind):
    """(7, 7, 2) -> 5x5x4 -> 2x2x4 -> 6 -> 3, the norm after both convs and (not instance) the dense."""
    spec, _ = CONV_NORM[kind]
    flat = [FLAT_NORM[kind][0]] if FLAT_NORM[kind] else []
    return fj.cnn.sequential((7, 7, 2), ["conv(4,3,padding=VALID)", spec, "relu", "conv(4,3,stride=2,padding=VALID)",
                                         spec, "tanh", "flatten", "dense(6)", *flat, "relu", "dense(3)"])


def net_ref(kind, p, x):
    g = CONV_NORM[kind][1]
    h = jax.nn.relu(ref_group_norm(ref_conv(x, p[0]["w"]) + p[0]["b"], p[0], g))
    h = jnp.tanh(ref_group_norm(ref_conv(h, p[1]["w"], 2) + p[1]["b"], p[1], g))
    h = h.reshape(x.shape[0], -1) @ p[2]["w"] + p[2]["b"]
    if FLAT_NORM[kind]:
        h = ref_group_norm(h, p[2], FLAT_NORM[kind][1])
    return jax.nn.relu(h) @ p[3]["w"] + p[3]["b"]


def _setup(model, keys, n=5, n_out=3):
    """float64 params with random scale/shift (none at its init value), data (x, y)."""
    k1, k2, k3 = keys(3)
    params = [dict(p) for p in model.init(k1, jnp.float64)]
    for i, p in enumerate(params):
        if "scale" in p:
            p.update(_affine(jax.random.fold_in(k2, i), p["scale"].shape[0]))
    kx, ky = jax.random.split(k3)
    x = jax.random.normal(kx, (n, *model.input_shape), jnp.float64)
    return params, x, jax.random.randint(ky, (n,), 0, n_out)


def _grads(model, params, x, y, rule, fb):
    loss = lambda p: fj.losses.softmax_ce(model.apply(p, x, rule=rule, feedback=fb, train=True), y)
    return jax.jit(jax.grad(loss))(params)


@pytest.mark.parametrize("kind", ["layer", "instance", "group"])
def test_norm_net_forward_bp_and_fa_with_B_equal_W_match_reference(x64, keys, kind):
    model = net(kind)
    assert not model.stateful and model.init_stats() == [{}] * 4
    params, x, y = _setup(model, keys)
    assert [sorted(p) for p in params][:2] == [["b", "scale", "shift", "w"]] * 2
    assert ("scale" in params[2]) == (kind != "instance") and "scale" not in params[3]
    y_model = jax.jit(model.apply)(params, x)  # logits only: no running statistics
    chex.assert_trees_all_close(y_model, net_ref(kind, params, x), **TOL)
    want = jax.jit(jax.grad(lambda p: fj.losses.softmax_ce(net_ref(kind, p, x), y)))(params)
    bp = _grads(model, params, x, y, "bp", None)
    chex.assert_trees_all_close(bp, want, rtol=1e-9, atol=1e-11)
    chex.assert_trees_all_close(_grads(model, params, x, y, "fa", [p["w"] for p in params]), bp, **TOL)


@pytest.mark.parametrize("kind", ["layer", "instance", "group"])
def test_one_hidden_block_dfa_with_matching_B_is_bp(x64, keys, kind):
    model = fj.cnn.sequential((6, 6, 1), ["conv(4,3)", CONV_NORM[kind][0], "relu", "maxpool(2)", "flatten",
                                          "dense(3)"])
    params, x, y = _setup(model, keys)
    fb = [params[1]["w"].T]  # (n_out, H*W*C): the true d y / d h_1
    chex.assert_trees_all_close(_grads(model, params, x, y, "dfa", fb), _grads(model, params, x, y, "bp", None),
                                **TOL)


# --- resnet -------------------------------------------------------------------------------------

def resnet_ref(p, x, norm_of):
    """ResNet-8, width 4: stem, three basic blocks (4, 8 s2, 16 s2 channels), global avg pool, fc."""
    h = jax.nn.relu(norm_of(ref_conv(x, p[0]["w"], 1, "SAME") + p[0]["b"], p[0]))
    for i, (f, s) in zip((1, 3, 5), ((4, 1), (8, 2), (16, 2))):
        a = jax.nn.relu(norm_of(ref_conv(h, p[i]["w"], s, "SAME") + p[i]["b"], p[i]))
        z = norm_of(ref_conv(a, p[i + 1]["w"], 1, "SAME") + p[i + 1]["b"], p[i + 1])
        h = jax.nn.relu(z + jnp.pad(h[:, ::s, ::s], ((0, 0), (0, 0), (0, 0), (0, f - h.shape[-1]))))
    return h.mean((1, 2)) @ p[7]["w"] + p[7]["b"]


@pytest.mark.parametrize("kind", ["batch", "layer", "instance", "group", "none"])
def test_resnet_builds_with_each_norm(keys, kind):
    """Shapes only (traced, not compiled); the numbers are checked against references below."""
    model = fj.cnn.resnet((8, 8, 1), 10, depth=8, width=4, norm=kind, groups=2)
    params = jax.eval_shape(model.init, keys(1)[0])
    assert len(params) == 8 and model.stateful == (kind == "batch")
    widths = [4, 4, 4, 8, 8, 16, 16]
    if kind == "none":
        assert all("scale" not in p for p in params) and ["gain" in p for p in params[1:7]] == [False, True] * 3
    else:
        assert [p["scale"].shape for p in params[:7]] == [(c,) for c in widths]
        assert [p["shift"].shape for p in params[:7]] == [(c,) for c in widths]
        assert all("gain" not in p for p in params)
    x = jnp.ones((2, 8, 8, 1))
    extra = {"stats": model.init_stats()} if kind == "batch" else {}
    for rule in ("bp", "fa", "dfa"):
        fb = jax.eval_shape(lambda k, r=rule: fj.init_feedback(k, model, r), keys(2)[1]) if rule != "bp" else None
        out = jax.eval_shape(lambda p, f, r=rule: model.apply(p, x, rule=r, feedback=f, train=True, **extra), params, fb)
        assert (out[0] if kind == "batch" else out).shape == (2, 10)


@pytest.mark.parametrize("kind,groups", [("layer", 1), ("instance", None), ("group", 2)])
def test_norm_resnet_forward_matches_reference_and_fa_with_B_equal_W_is_bp(x64, keys, kind, groups):
    model = fj.cnn.resnet((4, 4, 1), 3, depth=8, width=4, norm=kind, groups=2)
    params, x, y = _setup(model, keys)
    norm_of = lambda h, p: ref_group_norm(h, p, groups or h.shape[-1])
    chex.assert_trees_all_close(jax.jit(model.apply)(params, x), resnet_ref(params, x, norm_of), **TOL)
    if kind == "group":
        chex.assert_trees_all_close(_grads(model, params, x, y, "fa", [p["w"] for p in params]),
                                    _grads(model, params, x, y, "bp", None), **TOL)


# --- norm_mlp -----------------------------------------------------------------------------------

def test_norm_mlp_group_norm_matches_reference_and_rules_reduce_to_bp(x64, keys):
    k1, k2, k3 = keys(3)
    x = jax.random.normal(k2, (8, 5), jnp.float64)
    y = jax.random.randint(k3, (8,), 0, 3)
    deep = norm_mlp([5, 6, 4, 3], activation="tanh", norm="group", groups=2)
    params = deep.init(k1, jnp.float64)
    for i, p in enumerate(params[:-1]):
        p.update(_affine(jax.random.fold_in(k1, i), p["scale"].shape[0]))
    h = x
    for p in params[:-1]:
        h = jnp.tanh(ref_group_norm(h @ p["w"] + p["b"], p, 2))
    chex.assert_trees_all_close(jax.jit(deep.apply)(params, x), h @ params[-1]["w"] + params[-1]["b"], **TOL)
    def grads(m, p, rule, fb):
        return jax.jit(jax.grad(lambda p_: fj.losses.softmax_ce(m.apply(p_, x, rule=rule, feedback=fb), y)))(p)

    chex.assert_trees_all_close(grads(deep, params, "fa", [p["w"] for p in params]), grads(deep, params, "bp", None),
                                **TOL)
    shallow = norm_mlp([5, 6, 3], activation="tanh", norm="group", groups=3)
    sp = shallow.init(k1, jnp.float64)
    chex.assert_trees_all_close(grads(shallow, sp, "dfa", [sp[1]["w"].T]), grads(shallow, sp, "bp", None), **TOL)


# --- fj.sweep: jit, vmap over seeds, checkpoint and resume --------------------------------------

def test_sweep_trains_a_group_norm_net_and_resumes_bit_identically(tmp_path):
    model = fj.cnn.sequential((8, 8, 1), ["conv(4,3)", "groupnorm(2)", "relu", "maxpool(2)", "flatten", "dense(10)"])
    task = fj.data.images("digits", limit=64, test_limit=32)
    kw = dict(rule="fa", seeds=2, steps=4, eval_every=2, batch_size=16, progress=False)
    full = fj.sweep(model, task, checkpoint=tmp_path / "a", checkpoint_every=2, **kw)
    assert np.isfinite(full.loss).all() and full.state.params[0]["scale"].shape == (2, 4)
    assert not np.allclose(full.state.params[0]["scale"], 1)  # the scales train
    for s in range(2):  # the last evaluation is apply with the seed's final params (no running statistics)
        p_s = jax.tree.map(lambda a, s=s: a[s], full.state.params)
        acc = (model.apply(p_s, task.x_test).argmax(-1) == task.y_test).mean()
        np.testing.assert_allclose(full.test_acc[s, -1], acc, atol=1e-6)
    shutil.copytree(tmp_path / "a" / "2", tmp_path / "b" / "2")  # a run stopped after step 2
    resumed = fj.sweep(model, task, checkpoint=tmp_path / "b", **kw)
    assert resumed.resumed_from == 2
    np.testing.assert_array_equal(resumed.loss, full.loss)
    for a, b in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(resumed.state.params)):
        np.testing.assert_array_equal(a, b)


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("build,match", [
    (lambda: norm.group_norm(jnp.ones((2, 4, 4, 16)), norm.init_norm(16), 3),
     r"^groups=3 does not divide 16 channels; use a divisor of 16: 1, 2, 4, 8, 16$"),
    (lambda: norm.group_norm(jnp.ones((2, 4)), norm.init_norm(4), 0), "groups must be a positive int, got 0"),
    (lambda: norm.group_norm(jnp.ones((2, 4)), norm.init_norm(4), 2.0), "groups must be a positive int, got 2.0"),
    (lambda: norm.group_norm(jnp.ones(4), norm.init_norm(4), 1), r"group norm needs a \(batch, ..., channels\) input"),
    (lambda: norm.group_norm(jnp.ones((2, 4)), norm.init_norm(3), 1),
     r"group-norm params\['scale'\] has shape \(3,\), input has 4 channels"),
    (lambda: norm.instance_norm(jnp.ones((2, 4)), norm.init_norm(4)), "instance norm needs a \\(batch, H, W, channels"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(6,3)", "groupnorm(4)", "flatten", "dense(2)"]),
     "groups=4 does not divide 6 channels; use a divisor of 6: 1, 2, 3, 6"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(6,3)", "groupnorm", "flatten", "dense(2)"]),
     r"groupnorm needs its number of groups, e.g. groupnorm\(4\)"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(6,3)", "layernorm(groups=2)", "flatten", "dense(2)"]),
     "layernorm takes no groups"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["flatten", "dense(4)", "instancenorm", "dense(2)"]),
     r"instancenorm needs an \(H, W, C\) input, got shape \(4,\)"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(4,3)", "layernorm", "batchnorm", "flatten", "dense(2)"]),
     "block 0 .* has more than one norm layer"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["residual_in(4,1,norm=group,groups=3)", "residual_out(4)", "flatten",
                                           "dense(2)"]), "groups=3 does not divide 4 channels"),
    (lambda: fj.cnn.resnet((8, 8, 1), 10, depth=8, width=4, norm="group"),
     r"groups=8 does not divide 4 channels \(resnet width=4\); use a divisor of 4: 1, 2, 4"),
    (lambda: fj.cnn.resnet((8, 8, 1), 10, depth=8, norm="weight"),
     "unknown resnet norm 'weight'; known: batch, layer, instance, group, none"),
    (lambda: norm_mlp([4, 6, 2], norm="group", groups=4),
     r"groups=4 does not divide 6 features \(hidden layer 1\); use a divisor of 6: 1, 2, 3, 6"),
    (lambda: norm_mlp([4, 6, 2], norm="instance"), "norm='instance' has no meaning in an MLP: each group would be one"),
    (lambda: norm_mlp([4, 6, 2], norm="weight"), "unknown norm 'weight'; known: none, layer, group, batch"),
])
def test_bad_norm_settings_are_one_line_errors(build, match):
    with pytest.raises(ValueError, match=match) as err:
        build()
    assert "\n" not in str(err.value)


def test_parsed_specs():
    from fa_jax.models import conv, layer_specs, residual
    assert layer_specs.parse_layer("groupnorm(4)") == conv.GroupNorm("group", 4)
    assert layer_specs.parse_layer("instancenorm(eps=1e-3)") == conv.GroupNorm("instance", eps=1e-3)
    half = layer_specs.parse_layer("residual_in(16,1,norm=group,groups=8)")
    assert half == residual.ResidualIn(16, 1, norm="group", groups=8) and half.normalized and not half.stateful
