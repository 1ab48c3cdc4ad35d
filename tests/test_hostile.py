"""Hostile input to the public API, table-driven: every row is an input and its exact outcome
(a one-line ValueError naming the bad value, or a documented behaviour). The CLIs and run
directories: tests/runs/test_hostile_cli.py.

Nothing here compiles a training program except the tests whose behaviour is "it runs"
(tiny, named so); the errors all come before any compilation.
"""

import math
import re
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.training import memory
from fa_jax.data import Task

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 4)).astype(np.float32)
Y = np.where(np.arange(20) % 2, 1.0, -1.0).astype(np.float32)
YC = (np.arange(20) % 3).astype(np.int32)
MODEL = fj.mlp([4, 8, 1])
IMAGES = fj.data.from_arrays(RNG.normal(size=(20, 8, 8, 1)), YC, RNG.normal(size=(20, 8, 8, 1)), YC)


def _with(a, index, value):
    a = np.array(a)
    a[index] = value
    return a


def _task(**kw):
    base = dict(x_test=X, y_test=Y, x_train=X, y_train=Y, n_in=4, n_out=1, name="u")
    return Task(**{**base, **kw})


def _sweep(model=MODEL, task=None, **kw):
    return fj.sweep(model, task or _task(), **{"seeds": 1, "steps": 2, "eval_every": 1, "progress": False, **kw})


FB = fj.init_feedback(jax.random.key(1), MODEL, "fa")
API_ERRORS = [
    # data: fj.data.from_arrays
    ("nan in x_train", lambda: fj.data.from_arrays(_with(X, (3, 1), np.nan), Y, X, Y),
     "x_train has 1 NaN and 0 inf values (first at index (3, 1))"),
    ("inf in x_test", lambda: fj.data.from_arrays(X, Y, _with(X, (slice(0, 2), 0), np.inf), Y),
     "x_test has 0 NaN and 2 inf values (first at index (0, 0))"),
    ("nan label", lambda: fj.data.from_arrays(X, _with(Y, 4, np.nan), X, Y), "y_train has 1 NaN and 0 inf values"),
    ("empty x_train", lambda: fj.data.from_arrays(X[:0], Y[:0], X, Y), "x_train is empty (shape (0, 4))"),
    ("empty test set", lambda: fj.data.from_arrays(X, Y, X[:0], Y[:0]), "x_test is empty (shape (0, 4))"),
    ("labels shorter than x", lambda: fj.data.from_arrays(X, Y[:19], X, Y), "y_train has 19 labels for 20 examples"),
    ("train/test features differ", lambda: fj.data.from_arrays(X, Y, X[:, :3], Y),
     "x_train examples have shape (4,) but x_test examples (3,)"),
    ("3-D x", lambda: fj.data.from_arrays(X.reshape(20, 2, 2), Y, X, Y), "x_train must be 2-D (n, features) or 4-D"),
    ("string x", lambda: fj.data.from_arrays(X.astype(str), Y, X, Y), "x_train has dtype <U"),
    ("complex x", lambda: fj.data.from_arrays(X.astype(np.complex64), Y, X, Y), "x_train has dtype complex64"),
    ("class label out of range", lambda: fj.data.from_arrays(X, YC, X, _with(YC, 7, 12), n_out=3),
     "y_test[7] = 12 is out of range: labels must be integers in [0, 3) for n_out=3"),
    ("negative class label", lambda: fj.data.from_arrays(X, _with(YC, 5, -2), X, YC),
     "y_train[5] = -2 is out of range"),
    ("fractional class label", lambda: fj.data.from_arrays(X, _with(YC.astype(float), 0, 2.5), X, YC),
     "y_train[0] = 2.5 is out of range"),
    ("binary label 2", lambda: fj.data.from_arrays(X, _with(Y, 5, 2.0), X, Y, n_out=1),
     "y_train[5] = 2.0 is not a binary label"),
    ("binary labels -1, 0 and +1", lambda: fj.data.from_arrays(X, _with(Y, 2, 0.0), X, Y, n_out=1),
     "y_train[2] = 0.0 is not a binary label"),
    ("n_out 0", lambda: fj.data.from_arrays(X, Y, X, Y, n_out=0), "n_out must be a positive int or None, got 0"),
    ("input_shape mismatch", lambda: fj.data.from_arrays(X, Y, X, Y, input_shape=(3, 1, 1)),
     "x_train has 4 features; input_shape (3, 1, 1) needs 3"),
    # data: a user Task given to fj.sweep (checked before compiling)
    ("sweep: nan in a Task", lambda: _sweep(task=_task(x_train=_with(X, (3, 1), np.nan))),
     "task 'u': x_train has 1 NaN and 0 inf values (first at index (3, 1))"),
    ("sweep: inf label", lambda: _sweep(task=_task(y_test=_with(Y, 0, np.inf))), "y_test has 0 NaN and 1 inf"),
    ("sweep: empty test set", lambda: _sweep(task=_task(x_test=X[:0], y_test=Y[:0])),
     "task 'u' has an empty test set (x_test has shape (0, 4))"),
    ("sweep: empty training set", lambda: _sweep(task=_task(x_train=X[:0], y_train=Y[:0])),
     "task 'u' has an empty train set"),
    ("sweep: labels shorter than x", lambda: _sweep(task=_task(y_test=Y[:10])),
     "task 'u': x_test has 20 examples but y_test has 10 labels"),
    ("sweep: 0/1 labels with bce", lambda: _sweep(task=_task(y_test=(Y > 0).astype(np.float32))),
     "y_test[0] = 0.0 is out of range: binary labels must be -1 or +1 for loss 'bce'"),
    ("sweep: class label out of range",
     lambda: _sweep(fj.mlp([4, 8, 3]), _task(y_test=_with(YC, 2, 7), y_train=YC, n_out=3, default_loss="softmax_ce")),
     "y_test[2] = 7 is out of range: class labels must be integers in [0, 3)"),
    ("sweep: model/task mismatch", lambda: _sweep(fj.mlp([5, 8, 1])), "model is 5->1 but task 'u' is 4->1"),
    # sizes, steps, learning rates, names
    ("steps 0", lambda: _sweep(steps=0), "steps must be a positive int, got 0"),
    ("steps -5", lambda: _sweep(steps=-5), "steps must be a positive int, got -5"),
    ("steps 1.5", lambda: _sweep(steps=1.5), "steps must be a positive int, got 1.5"),
    ("steps 2**31", lambda: _sweep(steps=2**31, eval_every=2**31), "does not fit the int32 step counter"),
    ("seeds -3", lambda: _sweep(seeds=-3), "seeds must be >= 1 (a count) or a list of seeds, got -3"),
    ("seeds []", lambda: _sweep(seeds=[]), "got []"),
    ("seeds [1, 1]", lambda: _sweep(seeds=[1, 1]), "seeds contain duplicates: [1, 1]"),
    ("seed 2**32", lambda: _sweep(seeds=[2**32]), "list of ints in [0, 2**32), got [4294967296]"),
    ("batch_size 0", lambda: _sweep(batch_size=0), "batch_size must be a positive int, got 0"),
    ("eval_every 0", lambda: _sweep(eval_every=0), "eval_every must be a positive int, got 0"),
    ("lr -1", lambda: _sweep(lr=-1), "learning rate must be positive and finite, got -1"),
    ("lr nan", lambda: _sweep(lr=math.nan), "learning rate must be positive and finite, got nan"),
    ("lr inf in a per-seed list", lambda: _sweep(seeds=2, lr=[1e-3, math.inf]), "got inf"),
    ("rule nope", lambda: _sweep(rule="nope"), "unknown rule 'nope'; known: bp, "),
    ("loss nope", lambda: _sweep(loss="nope"), "unknown loss 'nope'; known:"),
    # models
    ("mlp width 0", lambda: fj.mlp([4, 0, 1]), "mlp sizes must be positive ints, got 0 in [4, 0, 1]"),
    ("mlp width -3", lambda: fj.mlp([4, -3, 1]), "got -3 in [4, -3, 1]"),
    ("mlp width 2.5", lambda: fj.mlp([4, 2.5, 1]), "got 2.5 in [4, 2.5, 1]"),
    ("mlp without layers", lambda: fj.mlp([4]), "mlp needs at least [n_in, n_out], got sizes=[4]"),
    ("conv with 0 features", lambda: fj.cnn.sequential((8, 8, 1), ["conv(0,3)", "flatten", "dense(10)"]),
     "conv features must be a positive int or a pair of them, got (0, 0)"),
    ("cnn input_shape (0, 8, 1)", lambda: fj.cnn.get("mlp", (0, 8, 1), 10),
     "input_shape must be (H, W, C) positive ints, got (0, 8, 1)"),
    ("cnn 0 classes", lambda: fj.cnn.get("mlp", (8, 8, 1), 0), "dense features must be a positive int"),
    ("mlp input of the wrong width", lambda: MODEL.apply(MODEL.init(jax.random.key(0)), jnp.ones((3, 5))),
     "input has 5 features (shape (3, 5)), model expects 4"),
    ("cnn input NCHW", lambda: fj.cnn.get("mlp", (8, 8, 1), 10).check_input(jnp.ones((2, 1, 8, 8))),
     "looks like NCHW: use x.transpose(0, 2, 3, 1)"),
    # feedback pytrees
    ("dfa feedback for fa", lambda: fj.check_feedback(MODEL, "fa", fj.init_feedback(jax.random.key(1), MODEL, "dfa")),
     "rule 'fa' needs a list of 2 feedback matrices, got 1"),
    ("another model's feedback", lambda: fj.check_feedback(MODEL, "fa", fj.init_feedback(
        jax.random.key(1), fj.mlp([4, 16, 1]), "fa")), "rule 'fa': feedback[0] has shape (4, 16), expected (4, 8)"),
    ("feedback as a dict", lambda: fj.check_feedback(MODEL, "fa", {"B": FB[0]}),
     "rule 'fa' needs a list of 2 feedback matrices, got dict"),
    ("no feedback", lambda: fj.check_feedback(MODEL, "fa", None), "rule 'fa' needs feedback: 2 matrices of shapes"),
    ("feedback nested one level too deep",
     lambda: MODEL.apply(MODEL.init(jax.random.key(0)), jnp.ones((3, 4)), rule="fa", feedback=[FB]), "got 1"),
    ("feedback scale -1", lambda: fj.init_feedback(jax.random.key(1), MODEL, "fa", scale=-1),
     "feedback scale must be a positive finite number, got -1"),
    ("feedback scale nan", lambda: fj.init_feedback(jax.random.key(1), MODEL, "fa", scale=math.nan), "got nan"),
    ("feedback dist cauchy", lambda: fj.init_feedback(jax.random.key(1), MODEL, "fa", dist="cauchy"),
     "unknown feedback dist 'cauchy'; known: uniform, normal"),
    # optimizers
    ("optimizer lr 0", lambda: fj.optimizer("adam", 0), "learning rate must be positive and finite, got 0"),
    ("optimizer lr -1", lambda: fj.optimizer("adam", -1), "got -1"),
    ("optimizer lr nan", lambda: fj.optimizer("adam", math.nan), "got nan"),
    ("optimizer lr inf", lambda: fj.optimizer("sgd", math.inf), "got inf"),
    ("optimizer lr 'fast'", lambda: fj.optimizer("adam", "fast"),
     "learning rate must be a positive number or an optax schedule, got 'fast'"),
    ("optimizer nope", lambda: fj.optimizer("nope"), "unknown optimizer 'nope'; known: adadelta"),
    ("optimizer unknown hyperparameter", lambda: fj.optimizer("adam", 1e-3, bogus=1),
     "adam: unknown hyperparameter 'bogus'; known: b1, b2, eps, eps_root, mu_dtype, nesterov (or a regularization key"),
]


@pytest.mark.parametrize("fn,match", [c[1:] for c in API_ERRORS], ids=[c[0] for c in API_ERRORS])
def test_api_error_is_one_line(fn, match):
    one_line_error(fn, match)


def _limited(fn):
    """Run ``fn``; return (seconds, peak-RSS growth in MiB)."""
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    fn()
    return time.perf_counter() - t0, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024


TOO_LARGE = [
    ("enormous width", lambda: _sweep(fj.mlp([4, 10**6, 10**6, 1])), "params, optimizer state and feedback"),
    ("enormous seed count", lambda: _sweep(seeds=10**9), "(1000000000 seeds x"),
    ("enormous batch", lambda: _sweep(batch_size=10**10), "reduce the width, batch_size, the test set or seeds"),
    ("enormous steps", lambda: _sweep(steps=2 * 10**9, eval_every=1), "reduce steps/eval_every or seeds"),
    ("enormous depth", lambda: _sweep(fj.mlp([4] + [2] * 5000 + [1])), "the model has 5001 layers"),
    ("enormous conv net", lambda: _sweep(fj.cnn.get("lecture_cnn", (8, 8, 1), 3, width=1e4), IMAGES),
     "params, optimizer state and feedback"),
    ("enormous parity data", lambda: fj.data.parity(10**9, 2), "the parity data (n=1000000000, 2048 examples)"),
]


@pytest.mark.parametrize("fn,match", [c[1:] for c in TOO_LARGE], ids=[c[0] for c in TOO_LARGE])
def test_too_large_is_refused_fast_without_allocating(fn, match, monkeypatch):
    monkeypatch.setattr(memory, "device_limit", lambda device=None: (16 * memory.GiB, "cpu physical RAM"))
    seconds, grown = _limited(lambda: one_line_error(fn, match, memory.TooLarge))
    assert seconds < 20 and grown < 200, (seconds, grown)


def test_memory_message_names_estimate_limit_and_what_to_reduce(monkeypatch):
    monkeypatch.setenv("FA_JAX_MEMORY_LIMIT_GIB", "0.001")
    msg = one_line_error(lambda: _sweep(fj.mlp([4, 256, 256, 1]), seeds=64), "", memory.TooLarge)
    assert re.fullmatch(r"this sweep needs about \d+\.\d GiB \(64 seeds x .*\) but the limit is 0\.0 GiB "
                        r"\(FA_JAX_MEMORY_LIMIT_GIB\); reduce .* \(an estimate, within ~2x\)", msg), msg
    monkeypatch.setenv("FA_JAX_MEMORY_LIMIT_GIB", "inf")
    assert memory.check_sweep(fj.mlp([4, 10**6, 10**6, 1]), _task(), seeds=8) is not None


# documented behaviours (no training program is compiled unless the name says "runs")
def test_from_arrays_dtypes():
    """2-D ints stay integer (int32 token ids); bools are cast to float32, float16/bfloat16 upcast, float64 cast
    without x64."""
    for dtype in (bool, np.float16, jnp.bfloat16, np.float64, np.float32):
        t = fj.data.from_arrays(X.astype(dtype), Y, X.astype(dtype), Y)
        assert t.x_train.dtype == jnp.float32 and t.x_test.dtype == jnp.float32, dtype
    for dtype in (np.int32, np.int64, np.uint8):
        t = fj.data.from_arrays(X.astype(dtype), Y, X.astype(dtype), Y)
        assert t.x_train.dtype == jnp.int32 and t.x_test.dtype == jnp.int32, dtype
    t = fj.data.from_arrays(X.astype(np.float16), Y, X, Y)
    np.testing.assert_array_equal(np.asarray(t.x_train), X.astype(np.float16).astype(np.float32))


def test_from_arrays_float64_kept_under_x64(x64):
    assert fj.data.from_arrays(X.astype(np.float64), Y, X, Y).x_train.dtype == jnp.float64


def test_from_arrays_labels():
    binary = fj.data.from_arrays(X, Y, X, Y)  # +-1: binary, one logit, bce
    assert (binary.n_out, binary.default_loss, binary.y_train.dtype) == (1, "bce", jnp.float32)
    zero_one = (Y > 0).astype(np.int64)
    mapped = fj.data.from_arrays(X, zero_one, X, zero_one, n_out=1)  # {0, 1} with n_out=1: 0 -> -1
    np.testing.assert_array_equal(np.asarray(mapped.y_train), Y)
    two = fj.data.from_arrays(X, zero_one, X, zero_one)  # {0, 1} inferred: 2 classes, softmax_ce
    assert (two.n_out, two.default_loss, two.y_train.dtype) == (2, "softmax_ce", jnp.int32)
    classes = fj.data.from_arrays(X, YC.astype(np.float32)[:, None], X, YC)  # (n, 1) floats: flattened, int
    assert classes.n_out == 3 and classes.y_train.shape == (20,) and classes.y_train.dtype == jnp.int32
    assert fj.data.from_arrays(X, YC, X, YC, n_out=10).n_out == 10


def test_from_arrays_images():
    imgs = RNG.normal(size=(20, 2, 2, 1))
    t = fj.data.from_arrays(imgs, YC, imgs, YC)
    assert t.input_shape == (2, 2, 1) and t.n_in == 4 and t.x_train.shape == (20, 2, 2, 1)
    flat = fj.data.from_arrays(imgs.reshape(20, 4), YC, imgs.reshape(20, 4), YC, input_shape=(2, 2, 1))
    np.testing.assert_array_equal(np.asarray(flat.x_train), np.asarray(t.x_train))


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.float16])
def test_int_and_float16_feedback_are_promoted(dtype):
    """Feedback of another dtype is promoted like any JAX array: the FA update is unchanged."""
    p, x = MODEL.init(jax.random.key(0)), jnp.asarray(X)
    sign = [jnp.sign(b) for b in FB]  # +-1: exact in every dtype
    g = lambda fb: jax.grad(lambda q: MODEL.apply(q, x, rule="fa", feedback=fb).sum())(p)  # noqa: E731
    for a, b in zip(jax.tree.leaves(g(sign)), jax.tree.leaves(g([s.astype(dtype) for s in sign]))):
        assert b.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("width", [0, -1, float("nan"), float("inf"), "2"])
def test_cnn_width_must_be_positive_and_finite(width):
    """fj.cnn.get(..., width=w) scales channels as max(1, round(c * w)) for w > 0; anything else is refused."""
    with pytest.raises(ValueError, match=r"width must be a positive finite number \(a channel multiplier\), got"):
        fj.cnn.get("lecture_cnn", (8, 8, 1), 10, width=width)
    assert [w[-1] for w in fj.cnn.get("allconv", (8, 8, 1), 10, width=0.01).weight_shapes[:2]] == [1, 1]


def test_batch_larger_than_training_set_runs_full_batch():
    """batch_size > n_train is full-batch gradient descent (fj.data.sample_fixed), with a
    one-time warning: the same numbers as batch_size = n_train. It runs (tiny)."""
    task = fj.data.from_arrays(X, Y, X, Y, name="tiny")
    with pytest.warns(UserWarning, match=r"batch_size=64 > the 20 training examples of task 'tiny': every step"):
        big = _sweep(task=task, batch_size=64, seeds=2)
    exact = _sweep(task=task, batch_size=20, seeds=2)
    np.testing.assert_array_equal(big.loss, exact.loss)


def test_user_arrays_train_it_runs():
    task = fj.data.from_arrays(X.astype(np.int8), Y, X, Y)
    res = _sweep(task=task, seeds=2, batch_size=8)
    assert res.loss.shape == (2, 2) and np.isfinite(res.loss).all()
