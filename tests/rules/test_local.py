"""local (float64 where exact): every block's update against the hand-written numpy gradient of its own
loss (fa_jax.rules.reference_local), no gradient across a block boundary, pred with the output
layer as head is BP, batch norm, dropout and a conv net under jit and vmap, options, models, params
without heads and labels without classes refused, and a sweep that learns."""

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


@functools.partial(jax.jit, static_argnums=(0, 1))
def _draw(model, n, k):
    """Params with random (not zero) heads and inputs (n, n_in), in one compiled call (eager float64
    ops compile one by one)."""
    params = fj.rules.get("local").init_params(k[0], model, model.init(k[1], jnp.float64))
    for p, kh in zip(params[:-1], jax.random.split(k[2], len(params))):
        p["head"] = jax.tree.map(lambda a, kk=kh: jax.random.normal(kk, a.shape, a.dtype), p["head"])
    return params, jax.random.normal(k[3], (n, model.n_in), jnp.float64)


def _np(tree):
    return jax.tree.map(np.asarray, tree)


def _setup(keys, sizes=(4, 5, 6, 3), n=8):
    """An MLP, its params with random (not zero) heads (numpy), inputs and labels (±1 for one output)."""
    model = fj.mlp(list(sizes))
    params, x = _draw(model, n, keys(5))
    y = jnp.asarray(np.array([1.0, -1.0] * (n // 2)) if sizes[-1] == 1 else np.arange(n) % sizes[-1])
    return model, _np(params), Batch(x, y, fj.losses.bce if sizes[-1] == 1 else fj.losses.softmax_ce)


@functools.lru_cache(maxsize=None)
def _compiled(rule, model, loss):
    objective = fj.rules.get(rule).train_objective

    def fn(p, x, y, k):
        out = jax.value_and_grad(objective, argnums=1, has_aux=True)(model, p, Batch(x, y, loss), None, k)
        return *out, loss(model.apply(p, x), y)

    return jax.jit(fn)


def _grad(rule, model, params, batch, key=None):
    """``((value, aux), update, task loss)`` of ``rule`` in one compiled call."""
    return _compiled(rule, model, batch.loss)(params, batch.x, batch.y, jax.random.key(0) if key is None else key)


@pytest.mark.parametrize("n_out", [3, 1], ids=["softmax_ce", "bce"])
@pytest.mark.parametrize("spec", ["local(loss=pred)", "local(loss=sim)", "local(beta=0.6;loss=predsim)"])
def test_every_block_takes_the_hand_gradient_of_its_own_loss(x64, keys, spec, n_out):
    """bce: labels ±1 (B,) for sim, 0/1 (B, 1) for pred and predsim (the same task: their sim targets
    are the 2-class one-hot of y > 0 either way); the reference always takes ±1 (B,)."""
    model, params, batch = _setup(keys, (4, 5, 6, n_out))
    if n_out == 1 and spec != "local(loss=sim)":
        batch = Batch(batch.x, jnp.asarray((np.asarray(batch.y)[:, None] + 1) / 2), batch.loss)
    (value, aux), got, task = _grad(spec, model, params, batch)
    y = batch.y if n_out == 3 else np.where(np.ravel(batch.y) > 0, 1.0, -1.0)
    rule = fj.rules.get(spec)
    want, losses = reference_local.local_grads(params, np.asarray(batch.x), y, rule.option("loss"), 0.6)
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
    np.testing.assert_allclose(value, task, **TOL)
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
    (value, aux), got, _ = _grad("local", model, params, batch)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), got, _grad("bp", model, params, batch)[1])
    assert float(aux.metrics["local_loss"]) == 0.0


MODELS = {  # a plain fj.mlp: every exactness test above, jitted
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


class _NoHiddenShapes:
    layers = []


def test_options_models_and_specs(keys):
    assert fj.rules.get("local(loss=pred)").option("loss") == "pred"
    r = fj.rules.get("local(beta=0.5;loss=predsim)")
    assert (r.option("beta"), r.option("loss"), r.family) == (0.5, "predsim", fj.rules.Family.LOCAL)
    assert fj.rules.get("local").options == (("beta", 0.99), ("loss", "predsim"))
    assert fj.rules.get("local(loss=sim)").init_params is None  # no heads without pred
    one_line_error(lambda: fj.rules.get("local(loss=recon)"), "unknown local option loss 'recon'; known: pred, sim")
    one_line_error(lambda: fj.rules.get("local(beta=1.5)"), "local: beta")
    one_line_error(lambda: fj.rules.get("local(alpha=1)"), "rule 'local' has no option 'alpha'")
    # beta weighs predsim's sim part only: a non-default beta with pred or sim has no effect, refused
    for loss in ("pred", "sim"):
        one_line_error(lambda lo=loss: fj.rules.get(f"local(loss={lo};beta=0.5)"),
                       f"local: beta weighs loss=predsim's sim part; got beta=0.5 with loss={loss}")
    assert fj.rules.get("local(loss=pred;beta=0.99)").name == "local(loss=pred)"
    nn = pytest.importorskip("flax.linen")
    flax_model = fj.from_flax(nn.Dense(3), (4,))
    one_line_error(lambda: fj.rules.check_model("local", flax_model), "needs a layered model")
    one_line_error(lambda: fj.rules.check_model("local(loss=pred)", _NoHiddenShapes()),
                   "rule 'local(loss=pred)' (its local pred heads)")


def _trace(spec, model, params, batch):
    """The objective traced, not compiled: what it raises while tracing."""
    objective = fj.rules.get(spec).train_objective
    return jax.eval_shape(lambda p: objective(model, p, batch, None, jax.random.key(0)), params)


def test_params_without_heads_and_labels_without_classes_are_one_line_errors():
    """The heads come from the rule's init_params; sim (and predsim) read class labels, which
    regression targets (real-valued, shaped like the logits) are not; pred takes them (its loss is the task's)."""
    model = fj.mlp([4, 5, 3])
    params = model.init(jax.random.key(0))
    x, classes = jnp.ones((6, 4)), jnp.arange(6) % 3
    one_line_error(lambda: _trace("local", model, params, Batch(x, classes, fj.losses.softmax_ce)),
                   "rule 'local' reads block 0's local head at params[0]['head'], which these params lack (keys: b, w)")
    targets = jnp.linspace(-1, 1, 18).reshape(6, 3)
    for spec in ("local(loss=sim)", "local"):
        one_line_error(lambda s=spec: _trace(s, model, params, Batch(x, targets, fj.losses.mse)),
                       f"rule {spec!r} reads class labels, but these labels are real-valued (float32, shape (6, 3)")
    one_line_error(lambda: _trace("local(loss=sim)", model, params, Batch(x, classes[:, None], lambda z, y: z.mean())),
                   "reads class labels of shape (*batch,) or (*batch, 3) (1 batch axes); got labels of shape (6, 1)")
    _trace("local(loss=sim)", model, params, Batch(x, jax.nn.one_hot(classes, 3, dtype=jnp.int32), fj.losses.mse))
    with_heads = fj.rules.get("local(loss=pred)").init_params(jax.random.key(0), model, params)
    _trace("local(loss=pred)", model, with_heads, Batch(x, targets, fj.losses.mse))


def test_a_sweep_learns_digits():
    res = fj.sweep(fj.mlp([64, 32, 10]), fj.data.digits(), rule="local(loss=predsim)", seeds=2, steps=200,
                   eval_every=100, batch_size=32, lr=3e-3, progress=False)
    assert np.isfinite(res.loss).all() and (res.diverged_at == -1).all()
    assert (res.test_acc[:, -1] > 0.6).all(), res.test_acc
    assert set(res.rule_metrics) == {"local_loss", "local_pred", "local_sim"}
    assert (res.rule_metrics["local_loss"][:, -1] < res.rule_metrics["local_loss"][:, 0]).all()
