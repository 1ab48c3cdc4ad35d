"""fj.from_flax on NNX models (float64): FA with B = W and DFA with B = W_out.T are BP; an NNX MLP
equals fj.mlp with the same weights and feedback under every rule; wrapping is hashable, init draws
per key (an instance: each layer type's default initializers; a factory: its own); batch norm and
dropout train through fj.sweep; a param fa_jax cannot wire is a one-line error naming its path."""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error
from flax import nnx

import fa_jax as fj
from fa_jax.rules import core as rules_lib
from fa_jax.wrap import nnx as nnx_adapter

F64 = jnp.float64
TOL = dict(rtol=1e-10, atol=1e-12)
RULES = ["bp", "fa", "dfa", "usf", "frsf", "brsf", "kp", "wm", "sdfa", "drtp"]
IMAGE, N_OUT, SIZES = (4, 4, 2), 5, (6, 8, 7, 5)


def wrap(module, shape):
    return fj.from_flax(module, shape, input_dtype="float64")


def grads(model, params, x, y, rule, fb):
    kw = {"targets": y} if rules_lib.get(rule).needs_targets else {}
    return jax.grad(lambda p: fj.losses.softmax_ce(model.apply(p, x, rule=rule, feedback=fb, **kw), y))(params)


def data(key, shape, n=5):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, *shape), F64), jax.random.randint(ky, (n,), 0, N_OUT)


def _differs(a, b):
    assert not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-9)


# --- FA with B = W, DFA with B = W_out.T: BP -----------------------------------------------------

class CNN(nnx.Module):
    """conv -> relu -> conv_transpose (stride 2) -> tanh -> maxpool -> flatten -> linear -> tanh -> linear."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 4, (3, 3), param_dtype=F64, rngs=rngs)
        self.up = nnx.ConvTranspose(4, 3, (3, 3), strides=(2, 2), param_dtype=F64, rngs=rngs)
        self.head = nnx.List([nnx.Linear(48, 6, param_dtype=F64, rngs=rngs),
                              nnx.Linear(6, N_OUT, param_dtype=F64, rngs=rngs)])

    def __call__(self, x):
        x = jnp.tanh(self.up(nnx.relu(self.conv(x))))
        x = nnx.max_pool(x, (2, 2), strides=(2, 2)).reshape(x.shape[0], -1)
        return self.head[1](jnp.tanh(self.head[0](x)))


def test_fa_with_B_equal_to_every_kernel_is_bp_on_an_nnx_cnn(x64, keys):
    k1, k2, k3 = keys(3)
    model = wrap(CNN(nnx.Rngs(0)), IMAGE)
    assert [c[1] for c in model.calls] == ["Conv", "ConvTranspose", "Linear", "Linear"]
    assert model.kernel_paths == [("conv",), ("up",), ("head", 0), ("head", 1)]
    assert model.point_names == ["up", "head/0", "head/1"] and model.hidden_shapes == [(4, 4, 4), (48,), (6,)]
    params = model.init(k1)
    x, y = data(k2, IMAGE)
    fb = model.feedback_tree("fa", model.kernels(params))
    rand = fj.init_feedback(k3, model, "fa", dtype=F64)
    assert jax.tree.structure(fb) == jax.tree.structure(rand)
    g_bp = grads(model, params, x, y, "bp", None)
    chex.assert_trees_all_close(grads(model, params, x, y, "fa", fb), g_bp, **TOL)
    g_fa = grads(model, params, x, y, "fa", rand)  # a B that is not W: every layer below the output differs
    for p in (params["conv"], params["up"], params["head"][0]):
        assert p["kernel"].dtype == F64
    for g, b in ((g_fa["conv"], g_bp["conv"]), (g_fa["up"], g_bp["up"]), (g_fa["head"][0], g_bp["head"][0])):
        _differs(g["kernel"], b["kernel"])
    chex.assert_trees_all_close(g_fa["head"][1], g_bp["head"][1], **TOL)


class PointCNN(nnx.Module):
    """conv (stride 2) -> relu -> conv_transpose -> tanh -> NNXDFAPoint -> flatten -> linear."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 3, (3, 3), strides=(2, 2), param_dtype=F64, rngs=rngs)
        self.up = nnx.ConvTranspose(3, 2, (2, 2), param_dtype=F64, rngs=rngs)
        self.point = fj.NNXDFAPoint()
        self.out = nnx.Linear(8, N_OUT, param_dtype=F64, rngs=rngs)

    def __call__(self, x):
        x = self.point(jnp.tanh(self.up(nnx.relu(self.conv(x)))))
        return self.out(x.reshape(x.shape[0], -1))


def test_dfa_with_one_point_before_the_last_linear_and_B_equal_to_its_transpose_is_bp(x64, keys):
    k1, k2, k3 = keys(3)
    model = wrap(PointCNN(nnx.Rngs(0)), IMAGE)
    assert model.points == (("point", (2, 2, 2)),) and model.markers
    params = model.init(k1)
    x, y = data(k2, IMAGE)
    g_bp = grads(model, params, x, y, "bp", None)
    chex.assert_trees_all_close(grads(model, params, x, y, "dfa", {"point": params["out"]["kernel"].T}), g_bp, **TOL)
    g_rand = grads(model, params, x, y, "dfa", fj.init_feedback(k3, model, "dfa", dtype=F64))
    _differs(g_rand["conv"]["kernel"], g_bp["conv"]["kernel"])
    chex.assert_trees_all_close(g_rand["out"], g_bp["out"], **TOL)


# --- an NNX MLP is fj.mlp under every rule ------------------------------------------------------

class MLP(nnx.Module):
    def __init__(self, rngs, sizes=SIZES):
        self.layers = nnx.List([nnx.Linear(a, b, param_dtype=F64, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x):
        *hidden, out = self.layers
        for layer in hidden:
            x = nnx.relu(layer(x))
        return out(x)


@pytest.mark.parametrize("rule", RULES)
def test_nnx_mlp_equals_builtin_mlp(x64, keys, rule):
    k1, k2, k3 = keys(3)
    builtin = fj.mlp(list(SIZES))
    model = wrap(MLP(nnx.Rngs(0)), (SIZES[0],))
    assert model.weight_shapes == builtin.weight_shapes and model.hidden_shapes == builtin.hidden_shapes
    assert model.point_names == ["layers/1", "layers/2"]
    blist = builtin.init(k1, F64)
    params = {"layers": {i: {"kernel": p["w"], "bias": p["b"]} for i, p in enumerate(blist)}}
    assert jax.tree.structure(params) == jax.tree.structure(jax.eval_shape(model.init, k1))
    x, y = data(k2, (SIZES[0],), 7)
    fbl = fj.init_feedback(k3, builtin, rule, dtype=F64)
    fb = None if fbl is None else model.feedback_tree(rule, list(fbl))
    if fbl is not None:
        assert jax.tree.structure(fb) == jax.tree.structure(fj.init_feedback(k3, model, rule, dtype=F64))
    g_b = grads(builtin, blist, x, y, rule, fbl)
    g_n = grads(model, params, x, y, rule, fb)["layers"]
    chex.assert_trees_all_close([{"w": g_n[i]["kernel"], "b": g_n[i]["bias"]} for i in range(len(blist))], g_b, **TOL)
    if rule != "bp":  # the rule is not BP in disguise
        _differs(g_b[0]["w"], grads(builtin, blist, x, y, "bp", None)[0]["w"])


# --- identity and init --------------------------------------------------------------------------

class Norms(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(400, 300, rngs=rngs)
        self.gen = nnx.LinearGeneral(300, (2, 3), rngs=rngs)
        self.ln = nnx.LayerNorm(300, rngs=rngs)
        self.bn = nnx.BatchNorm(300, rngs=rngs)

    def __call__(self, x):
        return self.gen(self.bn(self.ln(self.lin(x)))).reshape(x.shape[0], -1)


def test_wrapping_is_hashable_and_init_draws_per_key(x64, keys):
    k1, k2 = keys(2)
    net = MLP(nnx.Rngs(0))
    a, b = wrap(net, (SIZES[0],)), wrap(net, (SIZES[0],))
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b) and " at 0x" not in repr(a)
    assert a == wrap(MLP(nnx.Rngs(1)), (SIZES[0],))  # the same structure: the same model
    assert a != wrap(MLP(nnx.Rngs(0), sizes=(6, 9, 7, 5)), (SIZES[0],))
    assert "layers/0/kernel (6, 8)" in repr(a)
    p1, p2 = a.init(k1), a.init(k2)
    _differs(p1["layers"][0]["kernel"], p2["layers"][0]["kernel"])
    assert float(jnp.abs(p1["layers"][0]["bias"]).max()) == 0.0  # Linear's default: zero biases
    batched = jax.vmap(a.init)(jnp.stack([k1, k2]))
    chex.assert_trees_all_close(jax.tree.map(lambda v: v[1], batched), p2, **TOL)
    # an instance's params are redrawn with each layer type's default initializer, its stats reset
    norms = nnx_adapter.make_adapter(Norms(nnx.Rngs(0)))
    params, state = norms.init(k1)
    np.testing.assert_allclose(np.std(params["lin"]["kernel"]), 1 / np.sqrt(400), rtol=0.03)  # lecun_normal
    np.testing.assert_allclose(np.std(params["gen"]["kernel"]), 1 / np.sqrt(300), rtol=0.05)
    assert params["gen"]["kernel"].shape == (300, 2, 3) and params["ln"]["scale"].min() == 1.0
    assert float(state["bn"]["mean"].max()) == 0.0 and float(state["bn"]["var"].min()) == 1.0
    # a factory: init(key) is the factory's module built with nnx.Rngs(key), its own initializers
    def factory(rngs):
        return nnx.Sequential(nnx.Linear(6, 4, bias_init=nnx.initializers.constant(0.25), param_dtype=F64, rngs=rngs),
                              nnx.tanh, nnx.Linear(4, N_OUT, param_dtype=F64, rngs=rngs))

    f = wrap(factory, (6,))
    assert f == wrap(factory, (6,)) and f.kernel_paths == [("layers", 0), ("layers", 2)]
    pf = f.init(k1)
    chex.assert_trees_all_close(pf, nnx.to_pure_dict(nnx.state(factory(nnx.Rngs(k1)), nnx.Param)), **TOL)
    assert float(jnp.abs(pf["layers"][0]["bias"] - 0.25).max()) == 0.0
    _differs(pf["layers"][0]["kernel"], f.init(k2)["layers"][0]["kernel"])


# --- batch norm and dropout through fj.sweep ----------------------------------------------------

class BNNet(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), strides=(2, 2), rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)
        self.out = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        x = self.drop(nnx.relu(self.bn(self.conv(x))))
        return self.out(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa"])
def test_batch_norm_and_dropout_train_through_sweep(rule):
    task = fj.data.images("digits")
    model = fj.from_flax(BNNet(nnx.Rngs(0)), task.input_shape)
    assert model.stateful and model.stochastic
    stats0 = model.init_stats()
    res = fj.sweep(model, task, rule=rule, seeds=2, steps=30, batch_size=16, eval_every=10, progress=False)
    assert np.isfinite(res.loss).all() and np.isfinite(res.test_loss).all()
    stats = res.state.model_state
    assert stats["bn"]["mean"].shape == (2, 4)
    _differs(stats["bn"]["mean"][0], stats0["bn"]["mean"])
    _differs(stats["bn"]["var"][1], stats0["bn"]["var"])
    params = jax.tree.map(lambda v: v[0], res.state.params)
    s0 = jax.tree.map(lambda v: v[0], stats)
    x = task.x_test[:8]
    y1, new = model.apply(params, x, stats=s0, key=jax.random.key(1))
    y2, _ = model.apply(params, x, stats=s0, key=jax.random.key(2))
    np.testing.assert_array_equal(y1, y2)  # eval: no dropout, running stats, unchanged
    chex.assert_trees_all_equal(new, s0)
    t1, moved = model.apply(params, x, stats=s0, train=True, key=jax.random.key(1))
    t2, _ = model.apply(params, x, stats=s0, train=True, key=jax.random.key(2))
    _differs(t1, t2)  # train: dropout draws from the key
    _differs(moved["bn"]["mean"], s0["bn"]["mean"])


# --- a param fa_jax cannot wire -------------------------------------------------------------------

class Custom(nnx.Module):
    def __init__(self, rngs):
        self.w = nnx.Param(jax.random.normal(rngs.params(), (6, N_OUT)))

    def __call__(self, x):
        return x @ self.w


class WithCustom(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(6, 6, rngs=rngs)
        self.custom = Custom(rngs)

    def __call__(self, x):
        return self.custom(jnp.tanh(self.lin(x)))


def test_a_param_fa_jax_cannot_wire_is_a_one_line_error_naming_its_path():
    # a factory: its own init, then no layer type wires custom/w
    msg = one_line_error(lambda: fj.from_flax(WithCustom, (6,)), "layer custom (Custom) holds params ['w']")
    assert "Linear" in msg
    # an instance: fa_jax cannot even redraw custom/w
    msg = one_line_error(lambda: fj.from_flax(WithCustom(nnx.Rngs(0)), (6,)), "custom/w is a param of Custom")
    assert "rngs -> module" in msg
