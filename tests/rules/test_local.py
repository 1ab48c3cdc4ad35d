"""local (float64 where exact): every block's update against the hand-written numpy gradient of its own
loss (fa_jax.rules.reference_local), no gradient across a block boundary, pred with the output
layer as head is BP, batch norm, dropout and a conv net under jit and vmap, options and models
refused, and a sweep that learns."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.models import cnn
from fa_jax.rules import reference_local
from fa_jax.rules.rule import Batch

TOL = dict(rtol=1e-10, atol=1e-12)


def _setup(keys, sizes=(4, 5, 6, 3), n=8):
    """An MLP, its params with random (not zero) heads, inputs and labels (±1 for one output)."""
    k = keys(5)
    model = fj.mlp(list(sizes))
    params = fj.rules.get("local").init_params(k[0], model, model.init(k[1], jnp.float64))
    for p, kh in zip(params[:-1], jax.random.split(k[2], len(params))):
        p["head"] = jax.tree.map(lambda a, kk=kh: jax.random.normal(kk, a.shape, a.dtype), p["head"])
    x = jax.random.normal(k[3], (n, sizes[0]), jnp.float64)
    y = jnp.array([1.0, -1.0] * (n // 2)) if sizes[-1] == 1 else jnp.arange(n) % sizes[-1]
    return model, params, Batch(x, y, fj.losses.bce if sizes[-1] == 1 else fj.losses.softmax_ce)


@functools.lru_cache(maxsize=None)
def _compiled(rule, model, loss):
    objective = fj.rules.get(rule).train_objective

    def fn(p, x, y, k):
        return jax.value_and_grad(objective, argnums=1, has_aux=True)(model, p, Batch(x, y, loss), None, k)

    return jax.jit(fn)


def _grad(rule, model, params, batch, key=None):
    """``((value, aux), update)`` of ``rule`` in one compiled call (eager float64 ops compile one by one)."""
    return _compiled(rule, model, batch.loss)(params, batch.x, batch.y, jax.random.key(0) if key is None else key)


def _np(tree):
    return jax.tree.map(np.asarray, tree)


@pytest.mark.parametrize("n_out", [3, 1], ids=["softmax_ce", "bce"])
@pytest.mark.parametrize("spec", ["local(loss=pred)", "local(loss=sim)", "local(beta=0.6;loss=predsim)"])
def test_every_block_takes_the_hand_gradient_of_its_own_loss(x64, keys, spec, n_out):
    model, params, batch = _setup(keys, (4, 5, 6, n_out))
    (value, aux), got = _grad(spec, model, params, batch)
    rule = fj.rules.get(spec)
    want, losses = reference_local.local_grads(_np(params), np.asarray(batch.x), np.asarray(batch.y),
                                               rule.option("loss"), 0.6)
    for j, (g, w) in enumerate(zip(got, want)):
        for k in ("w", "b"):
            np.testing.assert_allclose(g[k], w[k], **TOL, err_msg=f"block {j} {k}")
        if rule.option("loss") == "sim":  # heads untouched
            assert j == len(got) - 1 or not any(np.any(a) for a in jax.tree.leaves(g["head"]))
        elif j < len(got) - 1:
            for k in ("w", "b"):
                np.testing.assert_allclose(g["head"][k], w["head"][k], **TOL, err_msg=f"head {j} {k}")
    assert all(np.abs(w["w"]).max() > 1e-3 for w in want)  # no update is trivially zero
    # the value is the task loss; local_loss the mean of the blocks' own losses
    np.testing.assert_allclose(value, batch.loss(model.apply(params, batch.x), batch.y), **TOL)
    np.testing.assert_allclose(aux.metrics["local_loss"], np.mean(losses), **TOL)


def test_the_hand_sim_gradient_is_the_gradient_of_the_sim_loss():
    """The hand backward of the similarity MSE against central differences (float64 numpy)."""
    rng = np.random.default_rng(0)
    h, t = rng.normal(size=(6, 5)), reference_local.targets(np.arange(6) % 3, 3)
    _, g = reference_local.sim_loss_grad(h, t)
    num = np.zeros_like(h)
    for i in np.ndindex(h.shape):
        d = np.zeros_like(h)
        d[i] = 1e-6
        num[i] = (reference_local.sim_loss_grad(h + d, t)[0] - reference_local.sim_loss_grad(h - d, t)[0]) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_no_gradient_crosses_a_block_boundary(x64, keys):
    """Changing block l's params (weights or head) leaves every update below it as it was (BP's
    change), and changing a head alone leaves every other block's update as it was."""
    model, params, batch = _setup(keys, (4, 5, 6, 5, 3))
    base = _grad("local", model, params, batch)[1]
    bp_base = _grad("bp", model, params, batch)[1]
    for j in range(1, len(params)):
        moved = [dict(p) for p in params]
        moved[j] = jax.tree.map(lambda a: a * 1.5 + 0.1, moved[j])
        got, bp = _grad("local", model, moved, batch)[1], _grad("bp", model, moved, batch)[1]
        for i in range(j):
            for k in ("w", "b"):
                np.testing.assert_array_equal(got[i][k], base[i][k])
            assert not np.allclose(bp[i]["w"], bp_base[i]["w"])
        assert not np.allclose(got[j]["w"], base[j]["w"])
    for j in range(len(params) - 1):
        moved = [dict(p) for p in params]
        moved[j]["head"] = jax.tree.map(lambda a: a * 1.5 + 0.1, moved[j]["head"])
        got = _grad("local", model, moved, batch)[1]
        for i in range(len(params)):
            if i != j:
                jax.tree.map(np.testing.assert_array_equal, got[i], base[i])


def test_pred_with_the_output_layer_as_head_is_bp(x64, keys):
    """One hidden block: pred's loss with head = (W_out, b_out) is the task loss, so the hidden
    update, and the output layer's (its input detached), are BP's; the head's is the output's."""
    model, params, batch = _setup(keys, (4, 7, 3))
    params[0]["head"] = {"w": params[1]["w"], "b": params[1]["b"]}
    got, bp = _grad("local(loss=pred)", model, params, batch)[1], _grad("bp", model, params, batch)[1]
    for k in ("w", "b"):
        np.testing.assert_allclose(got[0][k], bp[0][k], **TOL)
        np.testing.assert_allclose(got[1][k], bp[1][k], **TOL)
        np.testing.assert_allclose(got[0]["head"][k], bp[1][k], **TOL)


def test_a_model_without_hidden_block_learns_as_under_bp(x64, keys):
    model, params, batch = _setup(keys, (4, 3))
    (value, aux), got = _grad("local", model, params, batch)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), got, _grad("bp", model, params, batch)[1])
    assert float(aux.metrics["local_loss"]) == 0.0


MODELS = {
    "mlp": (lambda: fj.mlp([4, 5, 6, 3]), (4,)),
    "norm_mlp": (lambda: fj.norm_mlp([4, 5, 6, 3], norm="batch", dropout=0.3), (4,)),
    "conv": (lambda: cnn.get("lecture_cnn", (8, 8, 1), 3, width=0.25), (8, 8, 1)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_jit_and_vmap_over_seeds(keys, name):
    """Two seeds' updates in one jitted, vmapped call: finite, one head per hidden block, not BP's;
    a batch-norm model's statistics come back updated."""
    build, shape = MODELS[name]
    model = build()
    k = keys(3)
    x = jax.random.normal(k[0], (8, *shape))
    batch = Batch(x, jnp.arange(8) % 3, fj.losses.softmax_ce, model.init_stats() if name == "norm_mlp" else None)
    rule, bp = fj.rules.get("local"), fj.rules.get("bp")
    fj.rules.check_model(rule, model)

    def both(seed_key):
        params = rule.init_params(seed_key, model, model.init(seed_key))
        (_, aux), g = jax.value_and_grad(rule.train_objective, argnums=1, has_aux=True)(
            model, params, batch, None, seed_key)
        g_bp = jax.grad(lambda p: bp.train_objective(model, p, batch, None, seed_key)[0])(
            [{kk: v for kk, v in p.items() if kk != "head"} for p in params])
        return g, g_bp, aux

    g, g_bp, aux = jax.jit(jax.vmap(both))(jnp.stack(jax.random.split(k[1], 2)))
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(g))
    assert ["head" in p for p in g] == [True] * (len(g) - 1) + [False]
    # the last layer learns the task loss as under BP; the hidden blocks do not
    np.testing.assert_allclose(g[-1]["w"], g_bp[-1]["w"], rtol=1e-4, atol=1e-6)
    assert all(not np.allclose(a["w"], b["w"], atol=1e-6) for a, b in zip(g[:-1], g_bp[:-1]))
    assert np.isfinite(aux.metrics["local_loss"]).all() and aux.metrics["local_loss"].shape == (2,)
    if name == "norm_mlp":
        assert not np.allclose(aux.stats[0]["mean"], 0.0)


def test_options_models_and_specs():
    assert fj.rules.get("local(loss=pred)").option("loss") == "pred"
    r = fj.rules.get("local(beta=0.5;loss=predsim)")
    assert (r.option("beta"), r.option("loss"), r.family) == (0.5, "predsim", fj.rules.Family.LOCAL)
    assert fj.rules.get("local").options == (("beta", 0.99), ("loss", "predsim"))
    assert fj.rules.get("local(loss=sim)").init_params is None  # no heads without pred
    one_line_error(lambda: fj.rules.get("local(loss=recon)"), "unknown local option loss 'recon'; known: pred, sim")
    one_line_error(lambda: fj.rules.get("local(beta=1.5)"), "local: beta")
    one_line_error(lambda: fj.rules.get("local(alpha=1)"), "rule 'local' has no option 'alpha'")
    nn = pytest.importorskip("flax.linen")
    flax_model = fj.from_flax(nn.Dense(3), (4,))
    one_line_error(lambda: fj.rules.check_model("local", flax_model), "needs a layered model")


def test_a_sweep_learns_digits():
    res = fj.sweep(fj.mlp([64, 32, 10]), fj.data.digits(), rule="local(loss=predsim)", seeds=2, steps=200,
                   eval_every=100, batch_size=32, lr=3e-3, progress=False)
    assert np.isfinite(res.loss).all() and (res.diverged_at == -1).all()
    assert (res.test_acc[:, -1] > 0.6).all(), res.test_acc
    assert set(res.rule_metrics) == {"local_loss", "local_pred", "local_sim"}
    assert (res.rule_metrics["local_loss"][:, -1] < res.rule_metrics["local_loss"][:, 0]).all()
