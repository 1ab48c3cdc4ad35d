"""RBF networks: centre placement, closed-form and gradient output fits, three-phase training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fa_jax.models import rbf


def _data(key, n=40):
    kx, kn = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 1), jnp.float64, -3, 3)
    return x, jnp.sin(x[:, 0]) + 0.05 * jax.random.normal(kn, (n,), jnp.float64)


def test_kmeanspp_and_random_centres_are_distinct_data_points(x64, keys):
    k1, k2 = keys(2)
    x = jax.random.normal(k1, (50, 3), jnp.float64)
    for method in ("kmeans++", "random"):
        c = np.asarray(rbf.place_centres(method, k2, x, 10))
        d = np.abs(c[:, None, :] - np.asarray(x)[None]).sum(-1)
        assert (d.min(1) == 0).all()  # every centre is a data point
        assert len({tuple(r) for r in c}) == 10
    g = np.asarray(rbf.place_centres("uniform", k2, x[:, :2], 9))
    assert g.shape == (9, 2) and len(np.unique(g[:, 0])) == 3
    with pytest.raises(ValueError, match="k=10"):
        rbf.place_centres("uniform", k2, x[:, :2], 10)
    with pytest.raises(ValueError, match="unknown centre placement 'gng'"):
        rbf.place_centres("gng", k2, x, 3)


def test_kmeanspp_spreads_over_clusters(keys):
    k1, k2 = keys(2)
    centres = jnp.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = (centres[:, None] + 0.1 * jax.random.normal(k1, (3, 30, 2))).reshape(-1, 2)
    c = rbf.place_centres("kmeans++", k2, x, 3)
    nearest = jnp.argmin(jnp.sum((c[:, None] - centres[None]) ** 2, -1), 1)
    assert sorted(np.asarray(nearest).tolist()) == [0, 1, 2]


def test_lstsq_matches_numpy_and_gradient_fit_converges_to_it(x64, keys):
    x, y = _data(keys(1)[0])
    params = rbf.init_rbf(rbf.place_centres("uniform", None, x, 8), 1, sigma=0.8, dtype=jnp.float64)
    fitted = rbf.fit_output_lstsq(params, x, y, l2=0.1)
    phi = np.asarray(rbf.features(params, x))
    a = np.hstack([phi, np.ones((len(phi), 1))])
    reg = np.diag([0.1] * 8 + [0.0])
    ref = np.linalg.solve(a.T @ a + reg, a.T @ np.asarray(y))
    np.testing.assert_allclose(fitted["w"][:, 0], ref[:8], rtol=1e-8)
    np.testing.assert_allclose(fitted["b"][0], ref[8], rtol=1e-8)
    # mean squared error + (lam / 2) |w|^2 has the minimizer of sum + (n lam / 2) |w|^2
    g, losses = rbf.fit(params, x, y, phase="output", steps=3000, optimizer="sgd", lr=0.05, l2=0.1)
    lsq = rbf.fit_output_lstsq(params, x, y, l2=40 * 0.1 / 2)
    np.testing.assert_allclose(g["w"], lsq["w"], atol=1e-5)
    assert losses[-1] < losses[0]
    np.testing.assert_array_equal(g["mu"], params["mu"])  # phase 2 keeps centres and widths
    np.testing.assert_array_equal(g["log_sigma"], params["log_sigma"])


def test_three_phase_improves_on_two_phase_and_classification(keys):
    k1, k2 = keys(2)
    x, y = _data(k1)
    x, y = x.astype(jnp.float32), y.astype(jnp.float32)
    p = rbf.init_rbf(rbf.place_centres("kmeans++", k2, x, 4), 1)
    two = rbf.fit_output_lstsq(p, x, y)
    three, losses = rbf.fit(two, x, y, phase="all", steps=500, lr=0.01)
    mse = lambda q: float(jnp.mean((rbf.apply(q, x)[:, 0] - y) ** 2))
    assert mse(three) < mse(two)  # fine-tuning centres and widths lowers the phase-2 optimum
    assert not np.allclose(three["mu"], two["mu"])
    labels = (x[:, 0] > 0).astype(jnp.int32)
    c = rbf.fit_output_lstsq(rbf.init_rbf(rbf.place_centres("kmeans++", k2, x, 6), 2), x, labels)
    assert float((rbf.apply(c, x).argmax(1) == labels).mean()) > 0.9
    with pytest.raises(ValueError, match="unknown phase 'centres'"):
        rbf.fit(p, x, y, phase="centres")
