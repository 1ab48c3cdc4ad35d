"""Wrapped linen models under fj.sweep: the same run as the built-in fj.mlp from the same init,
reproducible runs, batch norm and dropout, checkpoint and resume with evolving feedback, and the
diagnostics (equal to the built-in's with the same weights and feedback)."""

import dataclasses
import shutil

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from linen_nets import (F64, MLP, SIZES, builtin_mlp, feedback_to_linen, params_to_linen, params_to_list, vectors,
                        wrap)

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg
from fa_jax.training import checkpoint

TASK = fj.data.parity(8, 2)
NET = (8, 16, 16, 1)
KW = dict(seeds=2, steps=40, batch_size=16, eval_every=10, progress=False)
METRICS = ("loss", "train_acc", "test_loss", "test_acc", "diverged_at")


def _wrapped():
    return fj.from_flax(MLP(NET, param_dtype="float32"), (NET[0],))


@dataclasses.dataclass(frozen=True, eq=False)
class BuiltinInit(fj.FlaxModel):
    """The wrapped MLP drawing its params as fj.mlp(NET) does (then in the linen structure)."""

    def _key(self):  # not the plain wrapped model's compiled programs
        return (type(self), *super()._key())

    def init(self, key):
        return params_to_linen(self, builtin_mlp(NET).init(key))


def _assert_identical(a, b):
    """Every metric array and every leaf of the final state (keys as raw data) bit for bit."""
    for f in METRICS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    la, lb = jax.tree.leaves(checkpoint.to_saveable(a.state)), jax.tree.leaves(checkpoint.to_saveable(b.state))
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --- fj.sweep of a wrapped MLP is fj.sweep of fj.mlp --------------------------------------------------

@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "kp"])
def test_sweep_of_wrapped_mlp_equals_sweep_of_builtin_mlp_and_is_reproducible(rule):
    plain = _wrapped()
    model = BuiltinInit(**{f.name: getattr(plain, f.name) for f in dataclasses.fields(plain)})
    builtin = builtin_mlp(NET)
    assert model.weight_shapes == builtin.weight_shapes and model.hidden_shapes == builtin.hidden_shapes
    a = fj.sweep(model, TASK, rule=rule, **KW)
    assert np.isfinite(a.loss).all() and np.isfinite(a.test_loss).all() and (a.diverged_at < 0).all()
    assert not np.array_equal(a.loss[0], a.loss[1])  # two seeds, two inits
    assert a.loss[:, -1].mean() < a.loss[:, 0].mean()  # it trained
    _assert_identical(a, fj.sweep(model, TASK, rule=rule, **KW))  # a second run: the same numbers
    b = fj.sweep(builtin, TASK, rule=rule, **KW)
    for f in ("loss", "test_loss", "test_acc"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=2e-5, atol=1e-6, err_msg=f)
    chex.assert_trees_all_close(params_to_list(model, a.state.params, b.state.params), b.state.params,
                                rtol=2e-5, atol=1e-6)
    if rule != "bp":  # the same feedback (init_feedback draws the same list, then packs it), evolved alike
        for i in range(2):
            fb = model.feedback_list(rule, jax.tree.map(lambda v, i=i: v[i], a.state.feedback))
            chex.assert_trees_all_close(fb, [B[i] for B in b.state.feedback], rtol=2e-5, atol=1e-6)


# --- batch norm and dropout ------------------------------------------------------------------------------

class BNDrop(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(16)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.8)(x)
        x = nn.Dropout(0.25, deterministic=not train)(nn.relu(x))
        return nn.Dense(1)(x)


@pytest.mark.parametrize("rule", ["dfa"])  # the points sit after batch norm and dropout
def test_batch_norm_and_dropout_train_under_sweep(rule):
    model = fj.from_flax(BNDrop(), (8,))
    assert model.stateful and model.stochastic
    stats = model.init_stats()
    assert set(stats) == {"batch_stats"}
    params = model.init(jax.random.key(0))
    x = TASK.x_test[:16]
    y1, s1 = model.apply(params, x, train=True, key=jax.random.key(1), stats=stats)
    y2, _ = model.apply(params, x, train=True, key=jax.random.key(2), stats=stats)
    assert not np.allclose(y1, y2)  # dropout draws from the key
    e1, s_eval = model.apply(params, x, stats=stats)
    np.testing.assert_array_equal(e1, model.apply(params, x, stats=stats)[0])  # eval: deterministic
    chex.assert_trees_all_equal(s_eval, stats)  # and the running statistics unchanged
    assert not np.allclose(s1["batch_stats"]["BatchNorm_0"]["mean"], 0)

    res = fj.sweep(model, TASK, rule=rule, **{**KW, "steps": 20})
    assert np.isfinite(res.loss).all() and np.isfinite(res.test_loss).all()
    ms = res.state.model_state["batch_stats"]["BatchNorm_0"]
    assert ms["mean"].shape == (2, 16)  # per seed
    assert not np.allclose(ms["mean"], 0) and not np.allclose(ms["var"], 1)  # the running statistics moved
    assert not np.array_equal(ms["mean"][0], ms["mean"][1])


# --- checkpoint and resume, with feedback that evolves ------------------------------------------------------

def test_resumed_sweep_of_wrapped_model_with_kp_is_bit_identical(tmp_path):
    model, rule = _wrapped(), "kp(lam=0.95)"
    full = fj.sweep(model, TASK, rule=rule, checkpoint=tmp_path / "a", checkpoint_every=20, **KW)
    assert full.resumed_from == 0 and checkpoint.latest_step(tmp_path / "a") == 40
    half = tmp_path / "b"
    shutil.copytree(tmp_path / "a" / "20", half / "20")  # a run stopped at step 20
    resumed = fj.sweep(_wrapped(), TASK, rule=rule, checkpoint=half, **KW)
    assert resumed.resumed_from == 20
    _assert_identical(full, resumed)
    _assert_identical(full, fj.sweep(model, TASK, rule=rule, **KW))  # checkpointing changes nothing
    fb = full.state.feedback  # the feedback evolved, in the params' structure
    assert set(fb) == {"Dense_0", "Dense_1", "Dense_2"} and set(fb["Dense_0"]) == {"kernel"}
    with pytest.raises(ValueError, match="different configuration"):  # another linen model: refused
        fj.sweep(fj.from_flax(MLP((8, 32, 16, 1), param_dtype="float32"), (8,)), TASK, rule=rule,
                 checkpoint=tmp_path / "a", **KW)


# --- diagnostics -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["dfa"])
def test_diagnostics_in_sweep_on_a_wrapped_model(rule):
    res = fj.sweep(_wrapped(), TASK, rule=rule, diagnostics=True, **{**KW, "steps": 20})
    d = res.diagnostics
    assert d["grad_alignment_deg"].shape == (2, 2, 3) and d["signal_alignment_deg"].shape == (2, 2, 2)
    assert d["weight_alignment_deg"].shape == (2, 2, 2)
    for k in dg.KEYS:
        assert np.isfinite(d[k]).all(), k
    assert (d["grad_alignment_deg"][..., :-1] > 1).all()  # not BP
    np.testing.assert_allclose(d["grad_alignment_deg"][..., -1], 0, atol=0.1)  # the output layer's is BP's


@pytest.mark.parametrize("rule", ["fa", "dfa", "usf", "sdfa", "drtp"])
def test_diagnose_on_wrapped_mlp_equals_diagnose_on_builtin(x64, keys, rule):
    k1, k2, k3 = keys(3)
    builtin = builtin_mlp()
    model = wrap(MLP(), (SIZES[0],))
    blist = builtin.init(k1, F64)
    lparams = params_to_linen(model, blist)
    fbl = fj.init_feedback(k3, builtin, rule, dtype=F64)
    x, y = vectors(k2, 9)
    diagnose = jax.jit(dg.diagnose, static_argnums=(0, 1, 2))  # one compile per model beats eager's many
    a = diagnose(model, rule, fj.losses.softmax_ce, lparams, feedback_to_linen(model, rule, fbl), x, y)
    b = diagnose(builtin, rule, fj.losses.softmax_ce, blist, fbl, x, y)
    assert set(a) == set(b) == set(dg.KEYS)
    for k in dg.KEYS:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-9, err_msg=k)
    assert (a["grad_alignment_deg"][:-1] > 1).all() and (a["signal_alignment_deg"] > 1).all()
    # the probes read the signal each point receives: under BP it is BP's, 0 degrees
    bp = diagnose(model, "bp", fj.losses.softmax_ce, lparams, None, x, y)
    np.testing.assert_allclose(bp["signal_alignment_deg"], 0, atol=1e-5)
    assert jnp.asarray(a["weight_alignment_deg"]).shape == (len(SIZES) - 2,)
