"""PEPITA on wrapped Flax models (fa_jax.rules.pepita.flax_pass): a linen / NNX MLP equals fj.mlp with the same
weights and F (float64, every param, softmax_ce and bce, both ``last`` options); fj.sweep of the wrapped
MLP is fj.sweep of fj.mlp from the same init; dropout keeps one mask for both passes; models that are
not a chain (pooling between layers), batch norm and markers are refused in one line."""

import dataclasses

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error
from flax import nnx
from linen_nets import F64, MLP, builtin_mlp, params_to_linen, params_to_list, wrap

import fa_jax as fj

TOL = dict(rtol=1e-10, atol=1e-12)
RULES = ["pepita", "pepita(f_scale=5,last=standard)", "pepita(f_scale=5)"]
CASES = [((6, 8, 7, 5), fj.losses.softmax_ce), ((6, 8, 7, 1), fj.losses.bce)]


def _data(key, sizes, n=7):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, sizes[0]), F64), jax.random.randint(ky, (n,), 0, max(sizes[-1], 2))


def _grads(model, params, x, y, rule, fb, loss, **kw):
    return jax.grad(lambda p: loss(model.apply(p, x, rule=rule, feedback=fb, **kw), y))(params)


# --- equal to the built-in ------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("sizes,loss", CASES, ids=["softmax_ce", "bce"])
def test_linen_mlp_equals_builtin_mlp_under_pepita(x64, keys, rule, sizes, loss):
    k1, k2, k3 = keys(3)
    builtin, model = builtin_mlp(sizes), wrap(MLP(sizes), (sizes[0],))
    blist = builtin.init(k1, F64)
    params = params_to_linen(model, blist)
    fbl = fj.init_feedback(k3, builtin, rule, dtype=F64)
    fb = fj.init_feedback(k3, model, rule, dtype=F64)  # the rule's init hook: [F], F (n_out, n_in), as fj.mlp's
    assert isinstance(fb, list) and len(fb) == 1 and fb[0].shape == (sizes[-1], sizes[0])
    np.testing.assert_array_equal(fb[0], fbl[0])
    x, y = _data(k2, sizes)
    g_b = _grads(builtin, blist, x, y, rule, fbl, loss)
    g_w = _grads(model, params, x, y, rule, fb, loss)
    chex.assert_trees_all_close(params_to_list(model, g_w, g_b), g_b, **TOL)
    g_j = jax.jit(lambda p: _grads(model, p, x, y, rule, fb, loss))(params)
    chex.assert_trees_all_close(g_j, g_w, **TOL)
    g_bp = _grads(builtin, blist, x, y, "bp", None, loss)
    assert not np.allclose(g_b[0]["w"], g_bp[0]["w"], rtol=1e-6, atol=1e-9)  # not BP in disguise


class NNXMLP(nnx.Module):
    def __init__(self, rngs, sizes=CASES[0][0]):
        self.layers = nnx.List([nnx.Linear(a, b, param_dtype=F64, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])

    def __call__(self, x):
        *hidden, out = self.layers
        for layer in hidden:
            x = jnp.tanh(layer(x))
        return out(x)


@pytest.mark.parametrize("rule", RULES[:2])
def test_nnx_mlp_equals_builtin_mlp_under_pepita(x64, keys, rule):
    k1, k2, k3 = keys(3)
    sizes, loss = CASES[0]
    builtin, model = builtin_mlp(sizes), wrap(NNXMLP(nnx.Rngs(0)), (sizes[0],))
    blist = builtin.init(k1, F64)
    params = {"layers": {i: {"kernel": p["w"], "bias": p["b"]} for i, p in enumerate(blist)}}
    assert jax.tree.structure(params) == jax.tree.structure(jax.eval_shape(model.init, k1))
    fb = fj.init_feedback(k3, model, rule, dtype=F64)
    np.testing.assert_array_equal(fb[0], fj.init_feedback(k3, builtin, rule, dtype=F64)[0])
    x, y = _data(k2, sizes)
    g_b = _grads(builtin, blist, x, y, rule, fb, loss)
    g_n = _grads(model, params, x, y, rule, fb, loss)["layers"]
    chex.assert_trees_all_close([{"w": g_n[i]["kernel"], "b": g_n[i]["bias"]} for i in range(len(blist))], g_b,
                                **TOL)


# --- dropout: one mask for both passes -------------------------------------------------------------------

class DropMLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dropout(0.5, deterministic=not train)(jnp.tanh(nn.Dense(16, param_dtype=F64)(x)))
        x = nn.Dropout(0.5, deterministic=not train)(jnp.tanh(nn.Dense(12, param_dtype=F64)(x)))
        return nn.Dense(5, param_dtype=F64)(x)


def test_dropout_keeps_one_mask_for_both_passes(x64, keys):
    k1, k2, k3 = keys(3)
    model = wrap(DropMLP(), (6,))
    assert model.stochastic
    params = model.init(k1)
    x, y = _data(k2, (6, 5))
    (F,) = fj.init_feedback(k3, model, "pepita", dtype=F64)
    kw = dict(train=True, key=jax.random.key(4))
    # F = 0: x_mod = x, so the modulated pass is the standard one (same mask): no hidden update
    g0 = _grads(model, params, x, y, "pepita", [jnp.zeros_like(F)], fj.losses.softmax_ce, **kw)
    for name in ("Dense_0", "Dense_1"):
        np.testing.assert_array_equal(g0[name]["kernel"], 0)
    assert np.abs(g0["Dense_2"]["kernel"]).max() > 0
    g = _grads(model, params, x, y, "pepita", [F * 100], fj.losses.softmax_ce, **kw)
    assert np.abs(g["Dense_0"]["kernel"]).max() > 0 and np.isfinite(g["Dense_0"]["kernel"]).all()
    g2 = _grads(model, params, x, y, "pepita", [F * 100], fj.losses.softmax_ce, train=True, key=jax.random.key(5))
    assert not np.allclose(g["Dense_0"]["kernel"], g2["Dense_0"]["kernel"])  # the mask follows the key


# --- fj.sweep: the wrapped MLP is the built-in ----------------------------------------------------------

NET = (8, 16, 16, 1)
TASK = fj.data.parity(8, 2)
KW = dict(seeds=2, steps=30, batch_size=16, eval_every=10, progress=False)


@dataclasses.dataclass(frozen=True, eq=False)
class BuiltinInit(fj.FlaxModel):
    """The wrapped MLP drawing its params as fj.mlp(NET) does (then in the linen structure)."""

    def _key(self):
        return (type(self), *super()._key())

    def init(self, key):
        return params_to_linen(self, builtin_mlp(NET).init(key))


def test_sweep_of_wrapped_mlp_equals_sweep_of_builtin_mlp():
    plain = fj.from_flax(MLP(NET, param_dtype="float32"), (NET[0],))
    model = BuiltinInit(**{f.name: getattr(plain, f.name) for f in dataclasses.fields(plain)})
    builtin = builtin_mlp(NET)
    a = fj.sweep(model, TASK, rule="pepita", **KW)
    assert np.isfinite(a.loss).all() and np.isfinite(a.test_loss).all() and (a.diverged_at < 0).all()
    assert not np.array_equal(a.loss[0], a.loss[1])
    b = fj.sweep(builtin, TASK, rule="pepita", **KW)
    for f in ("loss", "test_loss", "test_acc"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=2e-5, atol=1e-6, err_msg=f)
    chex.assert_trees_all_close(params_to_list(model, a.state.params, b.state.params), b.state.params,
                                rtol=2e-5, atol=1e-6)
    chex.assert_trees_all_close(a.state.feedback, b.state.feedback)  # the same [F], per seed


# --- refused --------------------------------------------------------------------------------------------

class PoolCNN(nn.Module):
    """conv -> relu -> maxpool -> conv -> flatten -> dense: pooling between two weighted layers."""

    @nn.compact
    def __call__(self, x):
        x = nn.max_pool(nn.relu(nn.Conv(3, (3, 3), param_dtype=F64)(x)), (2, 2), strides=(2, 2))
        x = jnp.tanh(nn.Conv(2, (3, 3), param_dtype=F64)(x))
        return nn.Dense(5, param_dtype=F64)(x.reshape(x.shape[0], -1))


class ConvChain(nn.Module):
    """conv -> relu -> conv -> flatten -> dense: a chain (a flatten between is fine)."""

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Conv(2, (3, 3), param_dtype=F64)(nn.relu(nn.Conv(3, (3, 3), param_dtype=F64)(x))))
        return nn.Dense(5, param_dtype=F64)(x.reshape(x.shape[0], -1))


class BN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(5)(nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(8)(x))))


def test_models_that_are_not_a_chain_are_refused_in_one_line(x64, keys):
    k1, k2 = keys(2)
    cnn = wrap(PoolCNN(), (4, 4, 2))
    msg = one_line_error(lambda: fj.rules.check_model("pepita", cnn), "layer Conv_0 outputs (4, 4, 3) per example")
    assert "Conv_1" in msg and "pooling" in msg
    one_line_error(lambda: fj.init_feedback(k1, cnn, "pepita"), "layer Conv_0 outputs")
    x = jnp.zeros((3, 4, 4, 2), F64)
    one_line_error(lambda: cnn.apply(cnn.init(k1), x, rule="pepita", feedback=[jnp.zeros((5, 32))]),
                   "layer Conv_0 outputs")
    bn = fj.from_flax(BN(), (6,))
    one_line_error(lambda: fj.rules.check_model("pepita", bn), "has state collections (batch norm)")
    one_line_error(lambda: fj.init_feedback(k1, bn, "pepita"), "has state collections (batch norm)")
    task = fj.data.from_arrays(np.zeros((8, 6)), np.arange(8) % 5, np.zeros((4, 6)), np.arange(4) % 5, n_out=5)
    one_line_error(lambda: fj.sweep(bn, task, rule="pepita", seeds=1, steps=2, eval_every=1, progress=False),
                   "has state collections")
    marked = wrap(MLP(markers=True), (6,))
    one_line_error(lambda: fj.rules.check_model("pepita", marked), "DFAPoint markers")
    # a conv chain with a flatten between runs, and trains its convs
    chain = wrap(ConvChain(), (4, 4, 2))
    fj.rules.check_model("pepita", chain)
    params = chain.init(k1)
    fb = fj.init_feedback(k2, chain, "pepita(f_scale=5)", dtype=F64)
    assert fb[0].shape == (5, 32)
    x = jax.random.normal(k2, (3, 4, 4, 2), F64)
    g = _grads(chain, params, x, jnp.arange(3), "pepita(f_scale=5)", fb, fj.losses.softmax_ce)
    assert np.abs(g["Conv_0"]["kernel"]).max() > 0 and np.isfinite(g["Conv_0"]["kernel"]).all()
    one_line_error(lambda: chain.apply(params, x, rule="pepita", feedback={"F": fb[0]}), "feedback is the list [F]")
