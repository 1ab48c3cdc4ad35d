"""Batch norm in conv models (fj.cnn ``batchnorm``, BN ResNet) under BP / FA / DFA, in float64
against references written with jax.numpy slicing and hand formulas."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.models import norm
from fa_jax.training import sweep as train

TOL = dict(rtol=1e-10, atol=1e-12)
EPS = 1e-5


# --- references: jax.numpy slicing and the batch-norm formula ---------------------------------

def ref_conv(x, w, stride=1, same=False):
    """Cross-correlation NHWC x HWIO as sums of strided slices; ``same``: TF/lax SAME zero padding."""
    kh, kw = w.shape[:2]
    if same:
        pads = []
        for n, k in zip(x.shape[1:3], (kh, kw)):
            total = max((-(-n // stride) - 1) * stride + k - n, 0)
            pads.append((total // 2, total - total // 2))
        x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    ho, wo = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = 0.0
    for a in range(kh):
        for b in range(kw):
            patch = x[:, a: a + stride * (ho - 1) + 1: stride, b: b + stride * (wo - 1) + 1: stride]
            out = out + jnp.einsum("nhwc,co->nhwo", patch, w[a, b])
    return out


def ref_bn(h, p, st, train, m=0.9):
    """Per last-axis feature over all other axes; returns (out, new running stats) by the formula."""
    axes = tuple(range(h.ndim - 1))
    if train:
        n = h.size // h.shape[-1]
        mu = jnp.sum(h, axes) / n
        var = jnp.sum((h - mu) ** 2, axes) / n
        new = {"mean": m * st["mean"] + (1 - m) * mu, "var": m * st["var"] + (1 - m) * var * n / (n - 1)}
    else:
        mu, var, new = st["mean"], st["var"], st
    return (h - mu) / jnp.sqrt(var + EPS) * p["scale"] + p["shift"], new


NET = ["conv(3,3,padding=VALID)", "batchnorm", "relu", "conv(4,3,stride=2,padding=VALID)", "batchnorm(momentum=0.8)",
       "tanh", "flatten", "dense(5)", "batchnorm", "relu", "dense(3)"]  # (7, 7, 2) -> 5x5x3 -> 2x2x4 -> 5 -> 3


def net_ref(p, st, x, train):
    h, s0 = ref_bn(ref_conv(x, p[0]["w"]) + p[0]["b"], p[0], st[0], train)
    h, s1 = ref_bn(ref_conv(jax.nn.relu(h), p[1]["w"], 2) + p[1]["b"], p[1], st[1], train, m=0.8)
    h, s2 = ref_bn(jnp.tanh(h).reshape(x.shape[0], -1) @ p[2]["w"] + p[2]["b"], p[2], st[2], train)
    return jax.nn.relu(h) @ p[3]["w"] + p[3]["b"], [s0, s1, s2, {}]


def resnet_ref(p, st, x, train):
    """BN ResNet-8, width 2: stem, three basic blocks (2, 4 s2, 8 s2 channels), global avg pool, fc."""
    new = [None] * 8
    h, new[0] = ref_bn(ref_conv(x, p[0]["w"], same=True) + p[0]["b"], p[0], st[0], train)
    h = jax.nn.relu(h)
    for i, (f, s) in zip((1, 3, 5), ((2, 1), (4, 2), (8, 2))):
        a, new[i] = ref_bn(ref_conv(h, p[i]["w"], s, True) + p[i]["b"], p[i], st[i], train)
        z, new[i + 1] = ref_bn(ref_conv(jax.nn.relu(a), p[i + 1]["w"], 1, True) + p[i + 1]["b"], p[i + 1],
                               st[i + 1], train)
        sc = jnp.pad(h[:, ::s, ::s], ((0, 0), (0, 0), (0, 0), (0, f - h.shape[-1])))
        h = jax.nn.relu(z + sc)
    return h.mean((1, 2)) @ p[7]["w"] + p[7]["b"], new[:7] + [{}]


@jax.jit
def _perturb(params, stats, k2, k3):
    """scale 1 + 0.3 N(0, 1), shift 0.2 N(0, 1), running mean/var + U(0, 0.1): nothing at its init value."""
    params = [dict(p) for p in params]
    for i, p in enumerate(params):
        if "scale" in p:
            p["scale"] = 1 + 0.3 * jax.random.normal(jax.random.fold_in(k2, i), p["scale"].shape, p["scale"].dtype)
            p["shift"] = 0.2 * jax.random.normal(jax.random.fold_in(k3, i), p["shift"].shape, p["shift"].dtype)
    stats = [{k: v + 0.1 * jax.random.uniform(jax.random.fold_in(k3, 100 + i), v.shape, v.dtype) for k, v in s.items()}
             for i, s in enumerate(stats)]
    return params, stats


def _setup(model, keys, shape, n=6, n_out=3):
    """float64 params with random scale/shift, random running stats, data (x, y)."""
    k1, k2, k3, k4 = keys(4)
    params, stats = _perturb(model.init(k1, jnp.float64), model.init_stats(jnp.float64), k2, k3)
    kx, ky = jax.random.split(k4)
    x = jax.random.normal(kx, (n, *shape), jnp.float64)
    return params, stats, x, jax.random.randint(ky, (n,), 0, n_out)


def _loss_grads(model, params, stats, x, y, rule, fb, wrt_x=False):
    def f(p, x_):
        return fj.losses.softmax_ce(model.apply(p, x_, rule=rule, feedback=fb, stats=stats, train=True)[0], y)
    return jax.jit(jax.grad(f, argnums=(0, 1) if wrt_x else 0))(params, x)


# --- forward, running statistics, eval mode ----------------------------------------------------

@pytest.mark.parametrize("jit", [False, True])
def test_bn_conv_net_forward_stats_and_eval_mode_match_reference(x64, keys, jit):
    model = fj.cnn.sequential((7, 7, 2), NET)
    assert model.stateful and [sorted(s) for s in model.init_stats()] == [["mean", "var"]] * 3 + [[]]
    params, stats, x, _ = _setup(model, keys, (7, 7, 2))
    apply = jax.jit(model.apply, static_argnames=("rule", "train")) if jit else model.apply
    y, new = apply(params, x, stats=stats, train=True)
    y_ref, new_ref = net_ref(params, stats, x, True)
    chex.assert_trees_all_close(y, y_ref, **TOL)
    chex.assert_trees_all_close(new, new_ref, **TOL)  # running = m * running + (1 - m) * batch, unbiased batch variance
    assert not np.allclose(new[0]["var"], stats[0]["var"])
    y_ev, same = apply(params, x, stats=new, train=False)  # eval: the running statistics, unchanged
    chex.assert_trees_all_close(y_ev, net_ref(params, new, x, False)[0], **TOL)
    chex.assert_trees_all_close(same, new, **TOL)
    # per example: independent of the batch
    chex.assert_trees_all_close(apply(params, x[:2], stats=new)[0], y_ev[:2], **TOL)


def test_one_train_step_updates_running_stats_by_the_hand_formula(x64, keys):
    """fa_jax.training.sweep's step (full batch) leaves model_state = m * init + (1 - m) * batch statistics."""
    model = fj.cnn.sequential((8, 8, 1), ["conv(3,3,padding=VALID)", "batchnorm", "relu", "flatten", "dense(4)",
                                          "batchnorm(momentum=0.5)", "relu", "dense(10)"])
    task = fj.data.images("digits", limit=12, test_limit=8)
    f64 = lambda t: jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, t)
    task = task.replace(x_train=f64(task.x_train), x_test=f64(task.x_test))
    tx = fj.optimizer("adam", 1e-3)
    state = f64(train.init_state(jax.random.key(0), model, "fa", tx))
    assert jax.tree.map(jnp.shape, state.model_state) == jax.tree.map(jnp.shape, model.init_stats())
    step = train.make_train_step(model, "fa", fj.losses.softmax_ce, tx, batch_size=64)  # >= 12: the whole set
    new, _ = jax.jit(step)(state, task)
    p, x = state.params, task.x_train
    h = ref_conv(x, p[0]["w"]) + p[0]["b"]
    mu, var = h.mean((0, 1, 2)), h.var((0, 1, 2)) * 432 / 431  # 12 images x 6 x 6 positions
    chex.assert_trees_all_close(new.model_state[0], {"mean": 0.1 * mu, "var": 0.9 + 0.1 * var}, **TOL)
    a = jax.nn.relu((h - mu) / jnp.sqrt(h.var((0, 1, 2)) + EPS) * p[0]["scale"] + p[0]["shift"])
    z = a.reshape(12, -1) @ p[1]["w"] + p[1]["b"]
    chex.assert_trees_all_close(new.model_state[1],
                                {"mean": 0.5 * z.mean(0), "var": 0.5 + 0.5 * z.var(0) * 12 / 11}, **TOL)
    assert new.model_state[2] == {}


# --- gradients under every rule -----------------------------------------------------------------

def test_bn_resnet_forward_and_bp_grads_match_reference(x64, keys):
    model = fj.cnn.resnet((4, 4, 1), 3, depth=8, width=2)  # batch norm is the default
    assert model.stateful and len(model.blocks) == 8 and "gain" not in model.init(keys(1)[0])[2]
    params, stats, x, y = _setup(model, keys, (4, 4, 1))
    apply, ref = jax.jit(model.apply, static_argnames="train"), jax.jit(resnet_ref, static_argnums=3)
    chex.assert_trees_all_close(apply(params, x, stats=stats, train=True), ref(params, stats, x, True), **TOL)
    chex.assert_trees_all_close(apply(params, x, stats=stats)[0], ref(params, stats, x, False)[0], **TOL)
    want = jax.grad(lambda p, x_: fj.losses.softmax_ce(resnet_ref(p, stats, x_, True)[0], y), argnums=(0, 1))
    chex.assert_trees_all_close(_loss_grads(model, params, stats, x, y, "bp", None, wrt_x=True),
                                jax.jit(want)(params, x), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("net", ["net", "resnet"])
def test_fa_with_B_equal_W_through_batch_norm_is_bp(x64, keys, net):
    model = fj.cnn.sequential((7, 7, 2), NET) if net == "net" else fj.cnn.resnet((4, 4, 1), 3, depth=8, width=2)
    params, stats, x, y = _setup(model, keys, model.input_shape)
    fb = [p["w"] for p in params]
    chex.assert_trees_all_close(_loss_grads(model, params, stats, x, y, "fa", fb, wrt_x=True),
                                _loss_grads(model, params, stats, x, y, "bp", None, wrt_x=True), **TOL)


def test_one_hidden_block_bn_dfa_with_matching_B_is_bp(x64, keys):
    model = fj.cnn.sequential((6, 6, 1), ["conv(4,3)", "batchnorm", "relu", "maxpool(2)", "flatten", "dense(3)"])
    params, stats, x, y = _setup(model, keys, (6, 6, 1))
    fb = [params[1]["w"].T]  # (n_out, H*W*C): the true d y / d h_1
    chex.assert_trees_all_close(_loss_grads(model, params, stats, x, y, "dfa", fb),
                                _loss_grads(model, params, stats, x, y, "bp", None), **TOL)


def test_dfa_sends_e_B_to_each_bn_resnet_block_output(x64, keys):
    """Under DFA block l's params get the VJP of that block (its BN's exact Jacobian included, batch
    statistics, input held fixed) applied to ``e @ B_l`` reshaped to the block's output."""
    model = fj.cnn.resnet((4, 4, 1), 3, depth=8, width=2)
    params, stats, x, y = _setup(model, keys, (4, 4, 1))
    fb = fj.init_feedback(keys(9)[8], model, "dfa", dtype=jnp.float64)

    @jax.jit
    def expected(params):
        hs, h = [], x
        for layer, p in zip(model.layers, params):
            hs.append(h)
            h = layer(p, h, fj.rules.linear)
        e = jax.grad(lambda z: fj.losses.softmax_ce(z, y))(h)
        return [jax.vjp(lambda p_, l=l: model.layers[l](p_, hs[l], fj.rules.linear), params[l])[1](
            (e @ fb[l]).reshape(6, *shape))[0] for l, shape in enumerate(model.hidden_shapes)]

    chex.assert_trees_all_close(_loss_grads(model, params, stats, x, y, "dfa", fb)[:-1], expected(params), **TOL)


# --- fj.sweep and errors ------------------------------------------------------------------------

def test_sweep_trains_a_bn_resnet_and_evaluates_with_its_running_stats(keys):
    model = fj.cnn.resnet((8, 8, 1), 10, depth=8, width=2)
    task = fj.data.images("digits", limit=64, test_limit=32)
    res = fj.sweep(model, task, rule="dfa", seeds=2, steps=4, eval_every=2, batch_size=16, progress=False)
    ms, params = res.state.model_state, res.state.params
    assert ms[1]["mean"].shape == (2, 2) and not np.allclose(ms[1]["mean"], 0)
    for s in range(2):
        one = lambda t, s=s: jax.tree.map(lambda a: a[s], t)
        logits, _ = model.apply(one(params), task.x_test, stats=one(ms))
        np.testing.assert_allclose(res.test_acc[s, -1], (logits.argmax(-1) == task.y_test).mean(), atol=1e-6)


@pytest.mark.parametrize("build,match", [
    (lambda: norm.batch_norm(jnp.ones(3), norm.init_norm(3), None, train=True),
     r"batch norm needs a \(batch, ..., features\) input, got shape \(3,\)"),
    (lambda: norm.batch_norm(jnp.ones((2, 4, 4, 3)), norm.init_norm(3), norm.init_batch_stats(5), train=False),
     r"batch-norm stats\['mean'\] has shape \(5,\), input has 3 features"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["conv(3)", "batchnorm", "batchnorm", "flatten", "dense(2)"]),
     "has more than one norm layer"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["batchnorm(momentum=1.5)", "flatten", "dense(2)"]),
     r"batchnorm momentum must be in \[0, 1\), got 1.5"),
    (lambda: fj.cnn.sequential((8, 8, 1), ["residual_in(4,1,norm=weight)", "residual_out(4)", "flatten", "dense(2)"]),
     "unknown residual norm 'weight'; known: batch, layer, instance, group, none"),
    (lambda: fj.cnn.resnet((8, 8, 1), 10, depth=8, norm="weight"), "unknown resnet norm 'weight'"),
])
def test_bad_batch_norm_is_a_one_line_error(build, match):
    with pytest.raises(ValueError, match=match) as err:
        build()
    assert "\n" not in str(err.value)


def test_bad_stats_fail_before_compilation(keys):
    model = fj.cnn.resnet((8, 8, 1), 10, depth=8, width=2)
    params, x = model.init(keys(1)[0]), jnp.ones((2, 8, 8, 1))
    f = jax.jit(lambda p, s: model.apply(p, x, stats=s))
    with pytest.raises(ValueError, match=r"model 'resnet8' has batch norm: pass stats="):
        f(params, None)
    with pytest.raises(ValueError, match=r"stats do not match model 'resnet8'.*7 with batch norm"):
        f(params, model.init_stats()[:-1])
    plain = fj.cnn.resnet((8, 8, 1), 10, depth=8, width=2, norm="none")
    with pytest.raises(ValueError, match="model 'resnet8' has no batch norm; stats= is for batch-norm models only"):
        plain.apply(plain.init(keys(1)[0]), x, stats=model.init_stats())
