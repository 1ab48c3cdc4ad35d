"""Schedules equal optax's; penalties, decay, max-norm, clipping; input scaling; L-BFGS."""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fa_jax as fj
from fa_jax.optim import regularize
from fa_jax.data import scaling
from fa_jax.optim import schedules
from fa_jax.optim.lbfgs import lbfgs_minimize

T = np.arange(0, 100)


@pytest.fixture
def keys(request):
    """Deterministic keys per test (crc32 of its name; str hash is salted per process)."""
    base = jax.random.key(zlib.crc32(request.node.name.encode()))
    return lambda n: list(jax.random.split(base, n))


@pytest.mark.parametrize("name,hyper,ref", [
    ("constant", {}, optax.constant_schedule(0.1)),
    ("step", {"every": 30, "factor": 0.5}, lambda t: 0.1 * 0.5 ** (t // 30)),
    ("exponential", {"decay_rate": 0.01}, optax.exponential_decay(0.1, 100, 0.01)),
    ("warmup_cosine", {"warmup": 10}, optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)),
    ("sgdr", {"cycles": 4}, optax.sgdr_schedule([{"init_value": 0.1, "peak_value": 0.1, "warmup_steps": 0,
                                                   "decay_steps": 25, "end_value": 0.0}] * 4)),
    ("one_cycle", {}, optax.cosine_onecycle_schedule(100, 0.1)),
])
def test_schedules_equal_optax(name, hyper, ref):
    assert set(schedules.SCHEDULES) == {"constant", "step", "exponential", "warmup_cosine", "sgdr", "one_cycle"}
    s = schedules.schedule(name, 0.1, 100, **hyper)
    np.testing.assert_allclose(np.asarray(jax.vmap(s)(T)), np.asarray(jax.vmap(ref)(T)), rtol=1e-5, atol=1e-8)


def test_sgdr_restarts_and_plot(tmp_path):
    s = schedules.schedule("sgdr", 0.1, 100, cycles=4)
    assert float(s(25)) == pytest.approx(0.1) and float(s(24)) < 0.01
    path = schedules.plot_schedule({n: schedules.schedule(n, 0.1, 100) for n in schedules.SCHEDULES}, 100,
                                   tmp_path / "s.png")
    assert path.stat().st_size > 1000


def test_reduce_on_plateau_scales_after_patience():
    tx = optax.chain(optax.sgd(1.0), schedules.reduce_on_plateau(factor=0.5, patience=3))
    p = jnp.ones(2)
    s = tx.init(p)
    scales = []
    for _ in range(8):
        u, s = tx.update(jnp.ones(2), s, p, value=jnp.asarray(1.0))  # the loss never improves
        scales.append(float(-u[0]))
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]  # x0.5 after every 3 flat updates


@pytest.mark.parametrize("bad,match", [
    (lambda: schedules.schedule("cosine_wobble", 0.1, 10), "unknown schedule 'cosine_wobble'"),
    (lambda: schedules.schedule("step", -0.1, 10), "-0.1"),
    (lambda: schedules.schedule("sgdr", 0.1, 10, cycles=0), "cycles"),
    (lambda: schedules.schedule("warmup_cosine", 0.1, 10, warmup=10), "warmup"),
    (lambda: fj.optimizer("sgd", 0.1, l2=-1.0), "l2 must be a finite number >= 0, got -1.0"),
    (lambda: fj.optimizer("sgd", 0.1, clip_norm=0.0), "clip_norm"),
    (lambda: fj.optimizer("sgd", 0.1, decoupled_decay=-0.1), "decoupled_decay"),
    (lambda: scaling.fit_scaler("pca", jnp.ones((3, 2))), "unknown scaler 'pca'"),
])
def test_bad_settings_are_one_line_errors(bad, match):
    with pytest.raises(ValueError, match=match) as err:
        bad()
    assert "\n" not in str(err.value)


def _params(key):
    model = fj.mlp([3, 4, 2], activation="prelu")
    return model, model.init(key, jnp.float64)


def test_penalty_grad_is_gradient_of_penalty_weights_only(x64, keys):
    _, params = _params(keys(1)[0])
    l1, l2 = 0.03, 0.5
    g = jax.grad(lambda p: regularize.penalty(p, l1, l2))(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    u, _ = regularize.add_penalty_grad(l1, l2).update(zeros, optax.EmptyState(), params)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(g)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for layer in u:  # biases and the PReLU slope are untouched
        assert not np.any(layer["b"]) and ("alpha" not in layer or float(layer["alpha"]) == 0.0)
        np.testing.assert_allclose(layer["w"], 0.5 * 0 + l1 * np.sign(params[u.index(layer)]["w"])
                                   + l2 * np.asarray(params[u.index(layer)]["w"]), rtol=1e-12)
    ub, _ = regularize.add_penalty_grad(0.0, l2, biases=True).update(zeros, optax.EmptyState(), params)
    np.testing.assert_allclose(ub[0]["b"], l2 * np.asarray(params[0]["b"]), rtol=1e-12)


def test_decay_mask_skips_biases_norm_scales_and_feedback():
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3), "scale": jnp.ones(3), "shift": jnp.ones(3),
              "alpha": jnp.ones(()), "B": jnp.ones((2, 3)), "nested": [{"w": jnp.ones((3, 1))}]}
    mask = regularize.weight_mask(params)
    assert mask["w"] and mask["nested"][0]["w"]
    assert not any(mask[k] for k in ("b", "scale", "shift", "alpha", "B"))


def test_adam_with_decoupled_decay_equals_masked_adamw(x64, keys):
    _, params = _params(keys(1)[0])
    loss = lambda p: sum(jnp.sum(jnp.sin(x) * (i + 1)) for i, x in enumerate(jax.tree.leaves(p)))
    ours = fj.optimizer("adam", 0.01, decoupled_decay=0.1)
    ref = optax.adamw(0.01, weight_decay=0.1, mask=regularize.weight_mask)
    pa, pb, sa, sb = params, params, ours.init(params), ref.init(params)
    for _ in range(5):
        ua, sa = ours.update(jax.grad(loss)(pa), sa, pa)
        ub, sb = ref.update(jax.grad(loss)(pb), sb, pb)
        pa, pb = optax.apply_updates(pa, ua), optax.apply_updates(pb, ub)
    for a, b in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_max_norm_projects_columns_and_clipping_matches_optax(x64, keys):
    _, params = _params(keys(1)[0])
    big = jax.tree.map(lambda x: 10 * jnp.ones_like(x), params)
    tx = fj.optimizer("sgd", 1.0, max_norm=0.7)
    u, _ = tx.update(big, tx.init(params), params)
    new = optax.apply_updates(params, u)
    for p_old, p_new in zip(params, new):
        norms = np.linalg.norm(np.asarray(p_new["w"]), axis=0)
        np.testing.assert_allclose(norms, 0.7, rtol=1e-10)  # every column was outside, now on the ball
        np.testing.assert_allclose(p_new["b"], np.asarray(p_old["b"]) - 10, rtol=1e-12)  # biases not projected
    for kw, ref in (({"clip_norm": 1.0}, optax.clip_by_global_norm(1.0)), ({"clip_value": 0.5}, optax.clip(0.5))):
        tx = fj.optimizer("sgd", 1.0, **kw)
        u, _ = tx.update(big, tx.init(params), params)
        r, _ = ref.update(big, ref.init(params))
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(r)):
            np.testing.assert_allclose(a, -np.asarray(b), rtol=1e-12)


def test_toolbox_composes_with_sweep_for_every_rule():
    task = fj.data.parity(8, 2, n_train=64, n_test=64)
    model = fj.mlp([8, 16, 1])
    for rule in ("bp", "fa", "dfa"):
        res = fj.sweep(model, task, rule=rule, seeds=2, steps=20, eval_every=10, optimizer="sgd", lr=0.05,
                       optimizer_hyper={"clip_norm": 1.0, "l2": 1e-3, "decoupled_decay": 1e-2, "max_norm": 3.0},
                       progress=False)
        assert np.isfinite(res.loss).all()
        w = np.asarray(res.state.params[0]["w"])  # (seeds, 8, 16)
        assert np.linalg.norm(w, axis=1).max() <= 3.0 + 1e-5


@pytest.mark.parametrize("name", ["minmax", "zscore", "zca"])
def test_scalers_fit_on_train_only(x64, keys, name):
    k1, k2 = keys(2)
    mix = jax.random.normal(k1, (4, 4), jnp.float64)
    x = jax.random.normal(k2, (500, 4), jnp.float64) @ mix + 3.0
    s = scaling.fit_scaler(name, x[:400], eps=1e-12)
    z = np.asarray(s(x[:400]))
    if name == "minmax":
        np.testing.assert_allclose(z.min(0), 0, atol=1e-12)
        np.testing.assert_allclose(z.max(0), 1, atol=1e-9)
    elif name == "zscore":
        np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
        np.testing.assert_allclose(z.std(0), 1, atol=1e-9)
    else:
        np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(4), atol=1e-8)
        np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    test_stats = np.asarray(s(x[400:])).mean(0)
    assert not np.allclose(test_stats, 0, atol=1e-6)  # test split was not used to fit


def test_lbfgs_solves_least_squares(x64, keys):
    k1, k2 = keys(2)
    a = jax.random.normal(k1, (40, 5), jnp.float64)
    y = jax.random.normal(k2, (40,), jnp.float64)
    p, values = lbfgs_minimize(lambda w: jnp.mean((a @ w - y) ** 2), jnp.zeros(5), steps=30)
    np.testing.assert_allclose(p, np.linalg.lstsq(np.asarray(a), np.asarray(y), rcond=None)[0], rtol=1e-7)
    assert values[-1] <= values[0]
