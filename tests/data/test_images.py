"""Image tasks: embedded digits as 8x8x1, tfds path via mock_data, jitted flip/crop augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj


def test_digits_images_are_nhwc_and_standardized():
    t = fj.data.images("digits")
    assert t.x_train.shape == (1348, 8, 8, 1) and t.x_test.shape == (449, 8, 8, 1)
    assert t.input_shape == (8, 8, 1) and t.n_in == 64 and t.n_out == 10 and t.default_loss == "softmax_ce"
    assert t.y_train.dtype == jnp.int32 and set(np.unique(t.y_train)) == set(range(10))
    assert abs(float(t.x_train.mean())) < 1e-5 and abs(float(t.x_train.std()) - 1) < 1e-5
    flat = fj.data.digits()  # same split, same images (per-pixel instead of per-channel scaling)
    np.testing.assert_array_equal(t.y_test, flat.y_test)


def _shifts(img, crop):
    h, w, _ = img.shape
    p = np.pad(img, ((crop, crop), (crop, crop), (0, 0)))
    return [p[i:i + h, j:j + w] for i in range(2 * crop + 1) for j in range(2 * crop + 1)]


def test_augment_flips_and_shifts_within_crop(keys):
    t = fj.data.images("digits", limit=1, augment=fj.data.Augment(flip=True, crop=1))
    sample = jax.jit(t.sample, static_argnums=1)
    x, y = sample(keys(1)[0], 64)
    img = np.asarray(t.x_train[0])
    allowed = _shifts(img, 1) + _shifts(img[:, ::-1], 1)
    assert all(any(np.array_equal(a, b) for b in allowed) for a in np.asarray(x))
    assert len({np.asarray(a).tobytes() for a in x}) > 5  # really random per image
    np.testing.assert_array_equal(x, sample(keys(1)[0], 64)[0])  # a pure function of the key
    assert (np.asarray(y) == int(t.y_train[0])).all()


tfds = pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize("name,shape", [("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_images_from_mock(name, shape):
    with tfds.testing.mock_data(num_examples=10):
        t = fj.data.images(name, limit=6, test_limit=4)
    assert t.x_train.shape == (6, *shape) and t.x_test.shape == (4, *shape) and t.input_shape == shape
    np.testing.assert_allclose(np.asarray(t.x_train).mean((0, 1, 2)), 0, atol=1e-4)


def test_missing_and_unknown_datasets_name_the_embedded_default(tmp_path):
    with pytest.raises(ValueError, match=r"dataset 'cifar10' split 'train' is not available here .*'digits'"):
        fj.data.images("cifar10", data_dir=str(tmp_path), download=False)
    with pytest.raises(ValueError, match=r"unknown image dataset 'svhn'; known: digits, mnist.*offline: 'digits'"):
        fj.data.images("svhn")
