"""fa_jax.data.scaling: min-max, z-score and ZCA scalers are fitted on the training split only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fa_jax.data import scaling


def test_unknown_scaler_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown scaler 'pca'") as err:
        scaling.fit_scaler("pca", jnp.ones((3, 2)))
    assert "\n" not in str(err.value)


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
