"""The tfds path, exercised with ``tfds.testing.mock_data`` (no download)."""

import numpy as np
import pytest

from fa_jax.data.tfds_source import load_arrays

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_load_arrays_from_mock(name, shape):
    with tfds.testing.mock_data(num_examples=12):
        x, y = load_arrays(name, "train")
    assert x.shape == (12, *shape) and x.dtype == np.uint8
    assert y.shape == (12,) and y.dtype == np.int32 and y.min() >= 0 and y.max() <= 9


def test_missing_dataset_names_the_fallback(tmp_path):
    with pytest.raises(ValueError, match=r"dataset 'mnist' split 'train' is not available here .*'digits'"):
        load_arrays("mnist", "train", data_dir=str(tmp_path), download=False)


def test_unknown_dataset():
    with pytest.raises(ValueError, match=r"unknown tfds dataset 'imagenet'; known: mnist"):
        load_arrays("imagenet", "train")
