"""Activations and losses against hand formulas written in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

import fa_jax as fj

A = np.linspace(-3, 3, 13)
FORMULAS = {
    "relu": np.maximum(A, 0), "leaky_relu": np.where(A > 0, A, 0.01 * A),
    "prelu": np.where(A >= 0, A, 0.25 * A), "elu": np.where(A > 0, A, np.exp(A) - 1),
    "gelu": 0.5 * A * (1 + erf(A / np.sqrt(2))),
    "selu": 1.0507009873554805 * np.where(A > 0, A, 1.6732632423543772 * (np.exp(A) - 1)),
    "sigmoid": 1 / (1 + np.exp(-A)), "tanh": np.tanh(A),
    "lecun_tanh": 1.7159 * np.tanh(2 * A / 3), "identity": A,
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_activation_formula(x64, name):
    act = fj.activations.get(name)
    np.testing.assert_allclose(act(jnp.asarray(A), act.init_params(jnp.float64)), FORMULAS[name], rtol=1e-7, atol=1e-12)


def test_prelu_slope_is_learned(x64):
    model = fj.mlp([3, 4, 1], activation="prelu")
    params = model.init(jax.random.key(0), jnp.float64)
    assert float(params[0]["alpha"]) == 0.25 and "alpha" not in params[1]
    x = -jnp.ones((2, 3), jnp.float64)
    g = jax.grad(lambda p: model.apply(p, x).sum())(params)
    assert g[0]["alpha"].shape == () and float(g[0]["alpha"]) != 0.0


Z1 = np.array([[0.3], [-1.2], [2.0]])
YB = np.array([1.0, -1.0, -1.0])
ZC = np.array([[0.1, 1.0, -0.5], [2.0, 0.0, 0.3]])
YC = np.array([1, 0])
OH = np.eye(3)[YC]


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


CASES = [
    ("bce", Z1, YB, np.mean(np.log1p(np.exp(-YB * Z1[:, 0])))),  # = BCE with t = (y+1)/2
    ("mse", Z1, YB, np.mean((Z1[:, 0] - YB) ** 2)),
    ("mae", Z1, YB, np.mean(np.abs(Z1[:, 0] - YB))),
    ("hinge", Z1, YB, np.mean(np.maximum(0, 1 - YB * Z1[:, 0]))),
    ("cosine", ZC, YC, np.mean(1 - (ZC * OH).sum(1) / np.linalg.norm(ZC, axis=1))),
    ("softmax_ce", ZC, YC, -np.mean(_np_log_softmax(ZC)[np.arange(2), YC])),
    ("softmax_ce", ZC, OH, -np.mean(_np_log_softmax(ZC)[np.arange(2), YC])),
    ("mse", ZC, YC, np.mean(((ZC - OH) ** 2).sum(1))),
    ("hinge", ZC, YC, np.mean(np.maximum(0, 1 + np.max(ZC - 1e9 * OH, 1) - (ZC * OH).sum(1)))),
]


@pytest.mark.parametrize("name,z,y,want", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_formula(x64, name, z, y, want):
    got = fj.losses.get(name)(jnp.asarray(z), jnp.asarray(y))
    np.testing.assert_allclose(float(got), want, rtol=1e-10)


def test_bce_gradient_is_yhat_minus_y(x64):
    g = jax.grad(lambda z: fj.losses.bce(z, jnp.asarray(YB)))(jnp.asarray(Z1))
    np.testing.assert_allclose(g[:, 0], (1 / (1 + np.exp(-Z1[:, 0])) - (YB + 1) / 2) / 3, rtol=1e-12)


def test_accuracy_and_errors():
    assert float(fj.losses.accuracy(jnp.asarray(Z1), jnp.asarray(YB)).mean()) == pytest.approx(2 / 3)
    assert float(fj.losses.accuracy(jnp.asarray(ZC), jnp.asarray(YC)).mean()) == 1.0
    with pytest.raises(ValueError, match=r"unknown loss 'xent'; known: bce, cosine"):
        fj.losses.get("xent")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        fj.mlp([2, 2], activation="swish")
