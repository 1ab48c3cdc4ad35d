"""Dropout keeps the expectation; layer/batch norm; FA/DFA through normalized, dropped-out MLPs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.models import norm
from fa_jax.models.dropout import dropout
from fa_jax.models.norm_mlp import norm_mlp

TOL = dict(rtol=1e-10, atol=1e-12)


def test_dropout_keeps_expectation_and_is_identity_at_eval(keys):
    k1, k2 = keys(2)
    h = jax.random.normal(k1, (8,)) + 2.0
    ks = jax.random.split(k2, 20000)
    out = jax.vmap(lambda k: dropout(k, h, 0.3))(ks)
    np.testing.assert_allclose(out.mean(0), h, rtol=0.03)
    np.testing.assert_allclose((out == 0).mean(), 0.3, atol=0.01)
    nz = np.asarray(out) != 0
    np.testing.assert_allclose(np.asarray(out)[nz], np.broadcast_to(np.asarray(h) / 0.7, out.shape)[nz], rtol=1e-6)
    assert dropout(None, h, 0.3, train=False) is h


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rate_outside_unit_interval_is_an_error(p):
    with pytest.raises(ValueError, match=f"dropout p must be in \\[0, 1\\), got {p}"):
        norm_mlp([3, 4, 1], dropout=p)


def test_layer_norm_formula(x64, keys):
    a = jax.random.normal(keys(1)[0], (5, 6), jnp.float64) * 3 + 1
    p = {"scale": jnp.arange(1.0, 7.0), "shift": jnp.full(6, 0.5)}
    ref = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5) * p["scale"] + p["shift"]
    np.testing.assert_allclose(norm.layer_norm(a, p), ref, rtol=1e-12)


def test_batch_norm_train_updates_stats_and_eval_uses_running_stats(x64, keys):
    a = jax.random.normal(keys(1)[0], (32, 4), jnp.float64) * 2 + 5
    p = norm.init_norm(4, jnp.float64)
    stats = norm.init_batch_stats(4, jnp.float64)
    out, new = norm.batch_norm(a, p, stats, train=True, momentum=0.9)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(0), 1, rtol=1e-5)
    np.testing.assert_allclose(new["mean"], 0.1 * np.asarray(a).mean(0), rtol=1e-12)
    np.testing.assert_allclose(new["var"], 0.9 + 0.1 * np.asarray(a).var(0, ddof=1), rtol=1e-12)
    ev, same = norm.batch_norm(a[:3], p, new, train=False)
    np.testing.assert_allclose(ev, (a[:3] - new["mean"]) / np.sqrt(new["var"] + 1e-5), rtol=1e-12)
    assert same is new
    # eval output of one example does not depend on the rest of the batch
    np.testing.assert_allclose(norm.batch_norm(a[:1], p, new, train=False)[0], ev[:1], rtol=1e-12)


@pytest.mark.parametrize("kind", ["layer", "batch"])
def test_fa_with_B_equal_W_and_one_layer_dfa_are_bp_through_norm_and_dropout(x64, keys, kind):
    """FA replaces only what each affine map sends to its input; DFA's signal enters at h_l and
    flows through dropout mask, activation and the normalization's exact Jacobian."""
    k1, k2, k3 = keys(3)
    x = jax.random.normal(k2, (16, 5), jnp.float64)
    y = jax.random.randint(k3, (16,), 0, 3)
    deep = norm_mlp([5, 7, 6, 3], activation="tanh", norm=kind, dropout=0.25)
    shallow = norm_mlp([5, 7, 3], activation="tanh", norm=kind, dropout=0.25)
    for model, rule, fb_of in ((deep, "fa", lambda p: [q["w"] for q in p]), (shallow, "dfa", lambda p: [p[1]["w"].T])):
        params = model.init(k1, jnp.float64)
        extra = {"stats": model.init_stats(jnp.float64)} if kind == "batch" else {}

        def loss(p, rule, fb):
            out = model.apply(p, x, rule=rule, feedback=fb, train=True, key=k3, **extra)
            return fj.losses.softmax_ce(out[0] if kind == "batch" else out, y)

        chex.assert_trees_all_close(jax.grad(loss)(params, rule, fb_of(params)),
                                    jax.grad(loss)(params, "bp", None), **TOL)


def test_norm_mlp_batch_returns_stats_and_dropout_model_trains_in_sweep(keys):
    m = norm_mlp([4, 8, 2], norm="batch")
    params = m.init(keys(1)[0])
    y, stats = m.apply(params, jnp.ones((3, 4)), train=True, stats=m.init_stats())
    assert y.shape == (3, 2) and len(stats) == 1 and stats[0]["mean"].shape == (8,)
    with pytest.raises(ValueError, match="stats="):
        m.apply(params, jnp.ones((3, 4)))
    task = fj.data.parity(8, 2, n_train=64, n_test=64)
    for rule in ("bp", "fa", "dfa"):  # batch norm + dropout: running stats threaded through the sweep
        model = norm_mlp([8, 16, 1], norm="batch", dropout=0.2)
        res = fj.sweep(model, task, rule=rule, seeds=2, steps=20, eval_every=10, progress=False)
        assert np.isfinite(res.loss).all()
        stats = res.state.model_state  # (seeds, 16) running mean/var, moved away from their init
        assert stats[0]["mean"].shape == (2, 16) and not np.allclose(stats[0]["var"], 1.0)
        for i in range(2):  # the last evaluation used eval mode with the final running statistics
            p_i, s_i, fb_i = jax.tree.map(lambda a: a[i], (res.state.params, stats, res.state.feedback))
            z, _ = model.apply(p_i, task.x_test, rule=rule, feedback=fb_i, stats=s_i)
            np.testing.assert_allclose(res.test_loss[i, -1], fj.losses.bce(z, task.y_test), rtol=1e-5)
    kw = dict(rule="bp", seeds=1, steps=20, eval_every=10, progress=False)
    plain = fj.sweep(norm_mlp([8, 16, 1], dropout=0.0), task, **kw)
    dropped = fj.sweep(norm_mlp([8, 16, 1], dropout=0.5), task, **kw)
    assert not np.allclose(plain.loss, dropped.loss)  # sweep really trains with dropout on
    np.testing.assert_allclose(plain.loss, fj.sweep(fj.mlp([8, 16, 1]), task, **kw).loss, rtol=1e-6)
