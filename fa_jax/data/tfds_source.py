"""Real datasets through ``tensorflow-datasets`` (``tfds.data_source``; no TensorFlow needed).

Optional: ``pip install -e '.[data]'``. A dataset that is neither prepared under
``data_dir`` (default ``~/tensorflow_datasets``) nor downloadable is a one-line
``ValueError`` that names the embedded, offline alternative.
"""

from __future__ import annotations

from os import PathLike

import numpy as np

from fa_jax import checks
from fa_jax.errors import InputError

KNOWN = ("mnist", "fashion_mnist", "cifar10")


def load_arrays(name: str, split: str, *, data_dir: str | PathLike[str] | None = None, download: bool = True,
                fallback: str = "digits", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All examples of ``name[split]`` as numpy arrays.

    Args:
        name: a dataset of :data:`KNOWN` (``mnist``, ``fashion_mnist``, ``cifar10``).
        split: the tfds split, e.g. ``"train"``, ``"test"``.
        data_dir: where prepared datasets live (default None: ``~/tensorflow_datasets``).
        download: also try downloading when the dataset is not prepared (default True).
        fallback: the offline alternative named in the error message (only used to word it).
        limit: keep the first ``limit`` examples (None: all).

    Returns:
        ``images`` uint8 (N, H, W, C) and ``labels`` int32 (N,).
    """
    checks.choice("tfds dataset", name, KNOWN, f" (offline: {fallback!r})")
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise InputError(f"dataset {name!r} needs tensorflow-datasets (pip install -e '.[data]'); "
                         f"the embedded alternative is {fallback!r}") from None
    source, last_err = None, None
    for dl in ((False, True) if download else (False,)):
        try:
            source = tfds.data_source(name, split=split, data_dir=data_dir, download=dl)
            break
        except Exception as err:  # tfds raises many types for "not there" (NotImplementedError, IOError, ...)
            last_err = err
    if source is None:
        why = str(last_err).splitlines()[0][:120] if last_err else "not found"
        raise InputError(f"dataset {name!r} split {split!r} is not available here ({type(last_err).__name__}: {why}); "
                         f"the embedded alternative is {fallback!r}")
    n = len(source) if limit is None else min(limit, len(source))
    if n == 0:
        raise InputError(f"dataset {name!r} split {split!r} is empty")
    try:
        examples = source.__getitems__(list(range(n)))  # one batched read
    except TypeError:  # some sources (e.g. tfds.testing.mock_data) only read one record at a time
        examples = [source[i] for i in range(n)]
    images = np.stack([np.asarray(e["image"], np.uint8) for e in examples])
    labels = np.asarray([int(e["label"]) for e in examples], np.int32)
    if images.ndim == 3:
        images = images[..., None]
    return images, labels
