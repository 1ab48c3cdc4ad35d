"""fa_jax.models.activations against hand formulas written in numpy; PReLU's slope is learned."""

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
