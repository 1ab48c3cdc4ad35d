"""The optimizer zoo equals optax's own optimizers; adadelta equals PyTorch's update formula."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fa_jax as fj

OPTAX = {
    "sgd": lambda lr: optax.sgd(lr), "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "adagrad": optax.adagrad, "adadelta": optax.adadelta, "rmsprop": optax.rmsprop,
    "adam": optax.adam, "adamw": optax.adamw, "nadam": optax.nadam, "adamax": optax.adamax,
    "amsgrad": optax.amsgrad,
}


def _quadratic_run(tx, steps=6):
    params = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(0.3)}
    target = {"w": jnp.array([0.2, 0.1, -0.4]), "b": jnp.array(-1.0)}
    loss = lambda p: sum(jnp.sum((p[k] - target[k]) ** 2 * (i + 1)) for i, k in enumerate(p))
    state = tx.init(params)
    out = []
    for _ in range(steps):
        g = jax.grad(loss)(params)
        u, state = tx.update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append(params)
    return out


@pytest.mark.parametrize("name", sorted(OPTAX))
def test_zoo_equals_optax(x64, name):
    assert sorted(OPTAX) == sorted(fj.optim.OPTIMIZERS)
    ours = _quadratic_run(fj.optimizer(name, 0.05))
    ref = _quadratic_run(OPTAX[name](0.05))
    for a, b in zip(ours, ref):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14)


def test_adadelta_is_pytorch_formula(x64):
    """PyTorch: v = rho v + (1-rho) g^2; d = sqrt(u + eps)/sqrt(v + eps) g; u = rho u + (1-rho) d^2; p -= lr d."""
    lr, rho, eps = 0.5, 0.9, 1e-6
    p = np.array([1.0, -2.0, 0.5])
    v, u = np.zeros(3), np.zeros(3)
    tx = fj.optimizer("adadelta", lr, rho=rho, eps=eps)
    jp = jnp.asarray(p)
    st = tx.init(jp)
    for _ in range(8):
        g = 2 * p * np.array([1.0, 3.0, 5.0])
        v = rho * v + (1 - rho) * g**2
        d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * d**2
        p = p - lr * d
        upd, st = tx.update(jnp.asarray(2 * np.asarray(jp) * np.array([1.0, 3.0, 5.0])), st, jp)
        jp = optax.apply_updates(jp, upd)
    np.testing.assert_allclose(jp, p, rtol=1e-12)


def test_learning_rate_per_vmapped_seed():
    tx = fj.optimizer("sgd", 1.0)
    params = jnp.ones(2)

    def one(lr):
        st = fj.set_learning_rate(tx.init(params), lr)
        u, _ = tx.update(jnp.ones(2), st, params)
        return u

    np.testing.assert_allclose(jax.vmap(one)(jnp.array([0.1, 0.2, 0.3])), -np.array([[0.1] * 2, [0.2] * 2, [0.3] * 2]), rtol=1e-6)


def test_schedule_learning_rate():
    tx = fj.optimizer("sgd", optax.linear_schedule(1.0, 0.0, 4))
    ups = _quadratic_run(tx, 2)
    assert ups[0]["b"] != ups[1]["b"]


@pytest.mark.parametrize("bad,match", [
    (("adamm", 0.1), r"unknown optimizer 'adamm'; known: adadelta, adagrad, adam"),
    (("adam", -0.1), r"learning rate must be positive and finite, got -0.1"),
    (("adam", float("nan")), r"learning rate must be positive"),
    (("adam", "fast"), r"learning rate must be a positive number"),
    (("adam", True), r"learning rate must be a positive number or an optax schedule, got True"),
])
def test_bad_optimizer_input(bad, match):
    with pytest.raises(ValueError, match=match):
        fj.optimizer(*bad)
    with pytest.raises(ValueError, match="adam: unknown hyperparameter 'betas'; known: b1, b2, eps"):
        fj.optimizer("adam", 0.1, betas=0.3)
