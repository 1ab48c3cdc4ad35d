"""fa_jax.checks: the shared argument checks, their messages, and the two dataset-name lists."""

import math

import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax import checks

REFUSED = [
    (lambda: checks.positive_int("steps", 0), "steps must be a positive int, got 0"),
    (lambda: checks.positive_int("steps", True), "steps must be a positive int, got True"),
    (lambda: checks.positive_int("steps", 2.0), "steps must be a positive int, got 2.0"),
    (lambda: checks.positive_int("steps", np.int64(3)), "steps must be a positive int, got np.int64(3)"),
    (lambda: checks.positive_int("limit", "3", none=True), "limit must be a positive int or None, got '3'"),
    (lambda: checks.integer("crop", -1, 0), "crop must be a non-negative int, got -1"),
    (lambda: checks.integer("cycles", 9, 1, 8, hi_text="steps=8"), "cycles must be an int in [1, steps=8], got 9"),
    (lambda: checks.integer("n_val", 5, 1, 5, hi_open=True, numpy=True), "n_val must be an int in [1, 5), got 5"),
    (lambda: checks.number_in("p", 1.0, 0, 1), "p must be in [0, 1), got 1.0"),
    (lambda: checks.number_in("p", math.nan, 0, 1), "p must be in [0, 1), got nan"),
    (lambda: checks.number_in("f", 0.0, 0.0, 1.0, lo_open=True, hi_open=False), "f must be in (0.0, 1.0], got 0.0"),
    (lambda: checks.number_in("f", False, 0, 1), "f must be in [0, 1), got False"),
    (lambda: checks.positive_number("scale", math.inf), "scale must be a positive finite number, got inf"),
    (lambda: checks.positive_number("eps", 0, finite=False), "eps must be > 0, got 0"),
    (lambda: checks.positive_number("eps", "1", finite=False), "eps must be > 0, got '1'"),
    (lambda: checks.boolean("diagnostics", 1), "diagnostics must be True or False, got 1"),
    (lambda: checks.choice("padding", "same", ("SAME", "VALID")), "unknown padding 'same'; known: SAME, VALID"),
    (lambda: checks.choice("gate", [], {"a": 1}, " (hint)"), "unknown gate []; known: a (hint)"),
]


@pytest.mark.parametrize("fn,match", REFUSED, ids=[r[1] for r in REFUSED])
def test_refused_with_one_line_naming_the_value(fn, match):
    assert one_line_error(fn, match) == match


def test_accepted():
    checks.positive_int("n", np.int64(3), numpy=True)
    checks.positive_int("limit", None, none=True)
    checks.integer("crop", 0, 0)
    checks.integer("k", 8, 1, 8)
    checks.number_in("p", np.float32(0.5), 0, 1)
    checks.number_in("f", 1.0, 0.0, 1.0, lo_open=True, hi_open=False)
    checks.positive_number("eps", math.inf, finite=False)
    checks.boolean("b", False)
    checks.choice("padding", "SAME", ("SAME", "VALID"))


def test_parity_and_image_dataset_names_are_separate():
    assert fj.data.PARITY_DATASETS == ("parity", "digits-parity", "mnist-parity", "mnist5k-parity")
    assert fj.data.IMAGE_DATASETS == ("digits", "mnist5k", "mnist", "fashion_mnist", "cifar10")
    assert fj.data.DATASETS is fj.data.PARITY_DATASETS
    one_line_error(lambda: fj.data.parity_task("digits", 3, 2),
                   "unknown dataset 'digits'; known: parity, digits-parity")
    one_line_error(lambda: fj.data.images("digits-parity"),
                   "unknown image dataset 'digits-parity'; known: digits, mnist5k, mnist, fashion_mnist, cifar10 "
                   "(offline: 'digits', 'mnist5k')")
