"""Embedded, offline tasks: k-sparse parity, XOR, scikit-learn's 8x8 digits."""

from fa_jax.data.digits import digits
from fa_jax.data.parity import parity, parity_batch, xor
from fa_jax.data.task import Task, sample_fixed

__all__ = ["Task", "digits", "parity", "parity_batch", "sample_fixed", "xor"]
