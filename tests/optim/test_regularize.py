"""fa_jax.optim.regularize through fj.optimizer: L1/L2 penalties, the decay mask, decoupled decay,
max-norm and gradient clipping; bad settings are one-line errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fa_jax as fj
from fa_jax.optim import regularize


@pytest.mark.parametrize("bad,match", [
    (lambda: fj.optimizer("sgd", 0.1, l2=-1.0), "l2 must be a finite number >= 0, got -1.0"),
    (lambda: fj.optimizer("sgd", 0.1, clip_norm=0.0), "clip_norm"),
    (lambda: fj.optimizer("sgd", 0.1, decoupled_decay=-0.1), "decoupled_decay"),
])
def test_bad_regularizer_settings_are_one_line_errors(bad, match):
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
