"""Daniely & Malach's mixture, digits-/MNIST-parity (MNIST through tfds mock_data), one-line errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.data.image_parity import digit_signs, pair_images


@pytest.mark.parametrize("k", [2, 3])
def test_mixture_matches_its_definition(keys, k):
    n, subset = 9, jnp.array([1, 4, 6][:k])
    x, y = fj.data.mixture_batch(keys(1)[0], subset, n, 40000)
    x, y = np.asarray(x), np.asarray(y)
    rel = x[:, np.asarray(subset)]
    np.testing.assert_array_equal(y, rel.prod(1))
    all_equal = np.all(rel == rel[:, :1], axis=1).mean()
    expected = 0.5 + 0.5 * 2.0 ** (1 - k)  # aligned half + uniform half that happens to agree
    assert abs(all_equal - expected) < 0.01
    others = np.delete(x, np.asarray(subset), axis=1)
    assert abs(others.mean()) < 0.01 and set(np.unique(x)) == {-1.0, 1.0}


def test_uniform_and_mixture_tasks_differ_only_in_distribution():
    u, m = fj.data.parity(12, 3, distribution="uniform"), fj.data.parity(12, 3, distribution="mixture")
    assert np.array_equal(u.aux["subset"], m.aux["subset"]) and m.name == "parity(n=12,k=3,mixture)"
    rel = np.asarray(m.x_test)[:, np.asarray(m.aux["subset"])]
    assert np.all(rel == rel[:, :1], axis=1).mean() > 0.55  # uniform alone gives 0.25


def test_pair_images_label_is_the_product_of_the_signs_at_the_positions(keys):
    pool = np.arange(20, dtype=np.uint8)[:, None] * np.ones((1, 4), np.uint8)  # image i is all i
    labels = np.arange(20) % 10
    signs = digit_signs(labels)
    np.testing.assert_array_equal(signs[:4], [1, -1, 1, -1])
    positions = jnp.array([0, 3])
    x, y = pair_images(keys(1)[0], jnp.asarray(pool), jnp.asarray(signs), positions, 5, 64, 1.0 / 19)
    assert x.shape == (64, 20) and float(x.max()) <= 1.0 and float(x.min()) >= 0.0
    idx = np.rint(np.asarray(x).reshape(64, 5, 4)[:, :, 0] * 19).astype(int)
    np.testing.assert_array_equal(np.asarray(y), signs[idx[:, [0, 3]]].prod(1))


def test_digits_parity_task(keys):
    t = fj.data.parity_task("digits-parity", 4, 2, data_seed=3)
    assert t.n_in == 4 * 64 and t.n_out == 1 and t.name == "digits-parity(n=4,k=2)"
    assert t.aux["positions"].shape == (2,) and t.aux["images"].shape == (1348, 64)
    x, y = jax.jit(t.sample, static_argnums=1)(keys(1)[0], 32)
    assert x.shape == (32, 256) and 0 <= float(x.min()) and float(x.max()) <= 1 and set(np.unique(y)) <= {-1.0, 1.0}
    assert abs(float(t.y_test.mean())) < 0.1 and fj.data.steps_per_epoch(t, 128) == 11
    full = fj.data.parity_task("digits-parity", 3, 3)
    assert list(np.asarray(full.aux["positions"])) == [0, 1, 2]


def test_mnist_parity_through_tfds_mock_data(keys):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=16):
        t = fj.data.parity_task("mnist-parity", 2, 2, n_test=8)
    assert t.n_in == 2 * 784 and t.x_test.shape == (8, 1568) and t.name == "mnist-parity(n=2,k=2)"
    x, y = t.sample(keys(1)[0], 5)
    assert x.shape == (5, 1568) and 0 <= float(x.min()) and float(x.max()) <= 1.0
    assert set(np.unique(np.asarray(y))) <= {-1.0, 1.0}


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match=r"dataset 'mnist' split 'train' is not available here .*'digits-parity'"):
        fj.data.image_parity("mnist", data_dir=str(tmp_path), download=False)
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar-parity'; known: parity, digits-parity, mnist-parity"):
        fj.data.parity_task("cifar-parity", 3, 3)
    with pytest.raises(ValueError, match=r"parity k=5 > n=3"):
        fj.data.parity_task("digits-parity", 3, 5)
    with pytest.raises(ValueError, match=r"unknown parity distribution 'skewed'; known: uniform, mixture"):
        fj.data.parity(10, 3, distribution="skewed")
    with pytest.raises(ValueError, match=r"distribution 'mixture' applies to dataset 'parity' only"):
        fj.data.parity_task("digits-parity", 3, 3, distribution="mixture")
    with pytest.raises(ValueError, match=r"unknown image-parity source 'svhn'; known: digits, mnist"):
        fj.data.image_parity("svhn")
