"""Every initializer against its variance formula (and its support)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj

FI, FO = 400, 300
FORMULAS = {  # independent statement of each variance
    "glorot_uniform": 2 / (FI + FO), "glorot_normal": 2 / (FI + FO),
    "he_uniform": 2 / FI, "he_normal": 2 / FI,
    "lecun_uniform": 1 / FI, "lecun_normal": 1 / FI,
    "uniform(10)": 100 / 3, "normal(0.5)": 0.25, "torch_default": 1 / (3 * FI),
}
BOUNDS = {"glorot_uniform": np.sqrt(6 / (FI + FO)), "he_uniform": np.sqrt(6 / FI),
          "lecun_uniform": np.sqrt(3 / FI), "uniform(10)": 10.0, "torch_default": 1 / np.sqrt(FI)}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_variance_matches_formula(name):
    w = np.asarray(fj.init.get(name)(jax.random.key(0), (FI, FO)))
    assert w.shape == (FI, FO)
    # 120k samples: relative standard error of the variance is well under 1%
    assert abs(w.var() / FORMULAS[name] - 1) < 0.03, (name, w.var(), FORMULAS[name])
    assert abs(w.mean()) < 4 * np.sqrt(FORMULAS[name] / w.size)
    if name in BOUNDS:
        assert np.abs(w).max() <= BOUNDS[name] and np.abs(w).max() > 0.99 * BOUNDS[name]


def test_module_functions_and_zeros():
    k = jax.random.key(1)
    np.testing.assert_array_equal(fj.init.he_uniform(k, (5, 4)), fj.init.get("he_uniform")(k, (5, 4)))
    assert float(jnp.abs(fj.init.zeros(k, (3, 3))).sum()) == 0
    assert float(fj.init.uniform(10.0)(k, (1000, 10)).max()) > 9
    assert fj.init.fans((3, 3, 16, 32)) == (144, 288)


def test_torch_default_bias_and_others_zero():
    b = fj.init.bias_init("torch_default")(jax.random.key(0), 25, 1000)
    assert 0.19 < float(jnp.abs(b).max()) <= 0.2
    assert float(jnp.abs(fj.init.bias_init("he_uniform")(jax.random.key(0), 25, 10)).sum()) == 0


def test_bad_names():
    with pytest.raises(ValueError, match=r"unknown init 'xavier'; known: .*glorot_uniform"):
        fj.init.get("xavier")
    with pytest.raises(ValueError, match="takes no argument"):
        fj.init.get("he_uniform(3)")
    with pytest.raises(ValueError, match="a > 0"):
        fj.init.get("uniform(-1)")
    with pytest.raises(ValueError, match="unknown init"):
        fj.mlp([2, 3], init="bogus")
