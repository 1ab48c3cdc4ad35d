"""Embedded, offline tasks: k-sparse parity, XOR, scikit-learn's 8x8 digits; image tasks (NHWC)."""

from fa_jax.data.digits import digits
from fa_jax.data.images import Augment, images
from fa_jax.data.parity import parity, parity_batch, xor
from fa_jax.data.task import Task, sample_fixed

__all__ = ["Augment", "Task", "digits", "images", "parity", "parity_batch", "sample_fixed", "xor"]
