"""fa_jax.optim.lbfgs: L-BFGS solves least squares."""

import jax
import jax.numpy as jnp
import numpy as np

from fa_jax.optim.lbfgs import lbfgs_minimize


def test_lbfgs_solves_least_squares(x64, keys):
    k1, k2 = keys(2)
    a = jax.random.normal(k1, (40, 5), jnp.float64)
    y = jax.random.normal(k2, (40,), jnp.float64)
    p, values = lbfgs_minimize(lambda w: jnp.mean((a @ w - y) ** 2), jnp.zeros(5), steps=30)
    np.testing.assert_allclose(p, np.linalg.lstsq(np.asarray(a), np.asarray(y), rcond=None)[0], rtol=1e-7)
    assert values[-1] <= values[0]
