"""Sequence tasks with token labels: the pydoc character LM (vocabulary, split, window sampler),
associative recall and modular addition checked by numpy, check_task and fj.sweep on token
labels, one-line errors, and a tiny linen sweep on modular addition."""

import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.data import text

LM = fj.data.char_lm(16, n_val=8)
RECALL = fj.data.associative_recall(4, 4, 3, 256, name="r")


def _split_tokens(val_fraction=0.1):
    tokens = text.encode(text.corpus())
    split = int(len(tokens) * (1 - val_fraction))
    return tokens[:split], tokens[split:]


class Tok(nn.Module):
    """Embed -> Dense: (batch, T) token ids -> (batch, T, v) logits."""
    v: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.v)(nn.Embed(self.v, 16)(x))


def _model(task):
    return fj.from_flax(Tok(task.n_out), (task.n_in,), input_dtype="int32")


# --- the text module ---------------------------------------------------------------------------------

def test_vocabulary_and_round_trip():
    assert len(text.VOCAB) == 97 and text.OTHER == 96 and text.VOCAB[0] == "\n"
    assert text.VOCAB[1:96] == "".join(chr(c) for c in range(32, 127))
    s = "def f(x):\n    return x ** 2  # ~{|}`@\\'\"\n"
    ids = text.encode(s)
    assert ids.dtype == np.int32 and ids.shape == (len(s),)
    assert text.decode(ids) == s and text.decode(list(ids)) == s and text.decode(jnp.asarray(ids)) == s
    ids = text.encode("a\u2019b\u00e9\tc\U0001F600")
    np.testing.assert_array_equal(ids, [text.encode("a")[0], 96, text.encode("b")[0], 96, 96,
                                        text.encode("c")[0], 96])
    assert text.decode(ids) == "a\u00bfb\u00bf\u00bfc\u00bf" and text.decode([]) == ""


def test_corpus_info_and_bits_per_char():
    info, s = text.corpus_info(), text.corpus()
    assert info["n_chars"] == len(s) > 100_000 and re.fullmatch(r"[0-9a-f]{64}", info["sha256"])
    assert re.fullmatch(r"3\.\d+\.\d+", info["python"])
    assert text.bits_per_char(math.log(2)) == pytest.approx(1.0)
    np.testing.assert_allclose(fj.data.bits_per_char(np.array([0.0, 2 * math.log(2)])), [0.0, 2.0])
    assert float(fj.data.bits_per_char(jnp.float32(math.log(2)))) == pytest.approx(1.0)


def test_char_lm_task_and_fixed_disjoint_split():
    assert (LM.n_in, LM.n_out, LM.default_loss, LM.input_shape, LM.x_train, LM.y_train, LM.n_train) == \
        (16, 97, "softmax_ce", None, None, None, None)
    assert LM.x_test.shape == LM.y_test.shape == (8, 16) and LM.x_test.dtype == LM.y_test.dtype == jnp.int32
    train, val = _split_tokens()
    np.testing.assert_array_equal(LM.aux["train_tokens"], train)
    assert LM.aux["train_tokens"].dtype == jnp.int32
    w = val[:8 * 17].reshape(8, 17)  # the first non-overlapping windows of the validation text
    np.testing.assert_array_equal(LM.x_test, w[:, :-1])
    np.testing.assert_array_equal(LM.y_test, w[:, 1:])
    again = fj.data.char_lm(16, n_val=8)
    np.testing.assert_array_equal(again.x_test, LM.x_test)
    other = fj.data.char_lm(16, val_fraction=0.5, n_val=8)
    assert other.aux["train_tokens"].shape[0] == len(_split_tokens(0.5)[0])
    fj.data.check_task(LM)


def test_lm_windows_come_from_the_training_part_only(keys):
    x, y = LM.sample(keys(1)[0], 32)
    assert x.shape == y.shape == (32, 16) and x.dtype == y.dtype == jnp.int32
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    train = np.asarray(LM.aux["train_tokens"]).astype(np.uint8).tobytes()
    for w in np.concatenate([x[:, :1], y], axis=1).astype(np.uint8):
        assert train.find(w.tobytes()) >= 0
    # token i at index i: the windows' first tokens are their starts, uniform in [0, N - context - 1]
    small = LM.replace(aux={"train_tokens": jnp.arange(20, dtype=jnp.int32)})
    x, y = small.sample(keys(2)[1], 256)
    x, y = np.asarray(x), np.asarray(y)
    np.testing.assert_array_equal(x, x[:, :1] + np.arange(16))
    np.testing.assert_array_equal(y, x + 1)
    assert set(x[:, 0]) == {0, 1, 2, 3}


@pytest.mark.parametrize("task", [LM, RECALL], ids=["lm", "recall"])
def test_sampler_is_pure_jittable_and_vmappable_over_keys(keys, task):
    k = keys(4)
    a, b = task.sample(k[0], 32), task.sample(k[0], 32)
    jitted = jax.jit(lambda t, key: t.sample(key, 32))(task, k[0])
    for u, v in ((a, b), (a, jitted)):
        np.testing.assert_array_equal(u[0], v[0])
        np.testing.assert_array_equal(u[1], v[1])
    assert not np.array_equal(a[0], task.sample(k[1], 32)[0])
    xs, ys = jax.vmap(lambda key: task.sample(key, 32))(jnp.stack(k[1:]))
    assert xs.shape == (3, 32, task.n_in)
    for i, key in enumerate(k[1:]):
        x, y = task.sample(key, 32)
        np.testing.assert_array_equal(xs[i], x)
        np.testing.assert_array_equal(ys[i], y)


def test_text_errors():
    _, val = _split_tokens()
    with pytest.raises(ValueError, match=r"char_lm context must be a positive int, got 0"):
        fj.data.char_lm(0)
    with pytest.raises(ValueError, match=r"char_lm context must be a positive int, got 2.0"):
        fj.data.char_lm(2.0)
    with pytest.raises(ValueError, match=r"char_lm context=1000000 needs a training text of at least context \+ 1"):
        fj.data.char_lm(10**6)
    for v in (0, 1, 1.5):
        with pytest.raises(ValueError, match=rf"char_lm val_fraction must be in \(0, 1\), got {v}"):
            fj.data.char_lm(val_fraction=v)
    with pytest.raises(ValueError, match=r"char_lm n_val must be a positive int, got 0"):
        fj.data.char_lm(n_val=0)
    most = len(val) // 65
    with pytest.raises(ValueError, match=rf"char_lm n_val={most + 1} is too many: .* at most {most} windows of "
                                         r"context \+ 1 = 65 tokens"):
        fj.data.char_lm(64, n_val=most + 1)
    with pytest.raises(ValueError, match=r"char_lm name must be a non-empty str, got ''"):
        fj.data.char_lm(name="")
    with pytest.raises(ValueError, match=r"encode takes a str, got bytes"):
        text.encode(b"abc")
    with pytest.raises(ValueError, match=r"decode: ids\[1\] = 97 is not a token id; ids must be in \[0, 97\)"):
        text.decode([3, 97])
    with pytest.raises(ValueError, match=r"decode takes a 1-D array of integer token ids"):
        text.decode(np.zeros((2, 2), np.int32))


# --- associative recall -----------------------------------------------------------------------------

def _check_recall(x, y, n_pairs, n_keys, n_values):
    x, y = np.asarray(x), np.asarray(y)
    t = 2 * n_pairs + 1
    assert x.shape == y.shape == (len(x), t) and x.dtype == y.dtype == np.int32
    k, v, q = x[:, 0:2 * n_pairs:2], x[:, 1:2 * n_pairs:2], x[:, -1]
    assert all(len(set(row)) == n_pairs for row in k)  # distinct keys per sequence
    assert k.min() >= 0 and k.max() < n_keys and v.min() >= n_keys and v.max() < n_keys + n_values
    hit = k == q[:, None]
    assert (hit.sum(1) == 1).all()  # the query is one of the sequence's keys
    np.testing.assert_array_equal(y[:, -1], v[hit])
    assert (y[:, :-1] == -1).all()


def test_associative_recall_batches_and_test_set(keys):
    task = fj.data.associative_recall()
    assert (task.n_in, task.n_out, task.default_loss, task.input_shape, task.n_train) == \
        (17, 32, "softmax_ce", None, None)
    assert task.x_test.shape == (1024, 17)
    _check_recall(task.x_test, task.y_test, 8, 16, 16)
    _check_recall(*task.sample(keys(1)[0], 1024), 8, 16, 16)
    assert RECALL.name == "r" and RECALL.n_out == 7
    _check_recall(RECALL.x_test, RECALL.y_test, 4, 4, 3)
    x, y = RECALL.sample(keys(2)[1], 256)
    _check_recall(x, y, 4, 4, 3)
    assert len(np.unique(np.asarray(x)[:, -1])) == 4 and len(np.unique(np.asarray(y)[:, -1])) == 3
    np.testing.assert_array_equal(fj.data.associative_recall().x_test, task.x_test)  # a fixed test set
    assert not np.array_equal(fj.data.associative_recall(test_seed=1).x_test, task.x_test)
    fj.data.check_task(task)


def test_associative_recall_errors():
    with pytest.raises(ValueError, match=r"associative_recall n_pairs=9 > n_keys=8: .* need n_pairs <= n_keys"):
        fj.data.associative_recall(9, 8)
    for i, nm in enumerate(("n_pairs", "n_keys", "n_values", "n_test")):
        args = [1, 1, 1, 1]
        args[i] = 0
        with pytest.raises(ValueError, match=rf"associative_recall {nm} must be a positive int, got 0"):
            fj.data.associative_recall(*args)
    with pytest.raises(ValueError, match=r"associative_recall test_seed must be an int in \[0, 4294967296\), got -1"):
        fj.data.associative_recall(test_seed=-1)


# --- modular addition -------------------------------------------------------------------------------

def test_modular_addition_split_and_labels():
    task = fj.data.modular_addition(7)
    assert (task.n_in, task.n_out, task.default_loss, task.input_shape, task.n_train, task.sampler) == \
        (3, 8, "softmax_ce", None, 24, fj.data.sample_fixed)
    x = np.concatenate([task.x_train, task.x_test])
    y = np.concatenate([task.y_train, task.y_test])
    assert x.dtype == y.dtype == np.int32 and x.shape == y.shape == (49, 3) and task.x_test.shape[0] == 25
    assert len({(a, b) for a, b, _ in x}) == 49  # disjoint and covering all 7 * 7 pairs
    assert (x[:, 2] == 7).all() and (y[:, :2] == -1).all()
    np.testing.assert_array_equal(y[:, 2], (x[:, 0] + x[:, 1]) % 7)
    np.testing.assert_array_equal(fj.data.modular_addition(7).x_train, task.x_train)  # a fixed split
    assert not np.array_equal(fj.data.modular_addition(7, split_seed=1).x_train, task.x_train)
    assert fj.data.modular_addition(5, 0.8).n_train == 20
    fj.data.check_task(task)


def test_modular_addition_errors():
    for p in (1, 2.0, True):
        with pytest.raises(ValueError, match=rf"modular_addition p must be an int >= 2, got {p}"):
            fj.data.modular_addition(p)
    for f in (0, 1, -0.5):
        with pytest.raises(ValueError, match=rf"modular_addition train_fraction must be in \(0, 1\), got {f}"):
            fj.data.modular_addition(5, f)
    with pytest.raises(ValueError, match=r"train_fraction=0.1 with p=2 puts 0 of the 4 pairs in the training set"):
        fj.data.modular_addition(2, 0.1)
    with pytest.raises(ValueError, match=r"modular_addition split_seed must be a non-negative int, got -1"):
        fj.data.modular_addition(split_seed=-1)
    with pytest.raises(ValueError, match=r"modular_addition name must be a non-empty str"):
        fj.data.modular_addition(name=None)


# --- token labels in check_task and fj.sweep --------------------------------------------------------------

def test_check_task_refuses_other_losses_and_bad_token_labels():
    task = fj.data.modular_addition(5)
    for loss in ("mse", "bce", "hinge"):
        with pytest.raises(ValueError, match=r"task 'modadd' has token labels \(y_test of shape \(13, 3\)\): token "
                                             rf"tasks take loss 'softmax_ce' without label smoothing, got loss "
                                             rf"'{loss}'"):
            fj.data.check_task(task, loss=loss)
    with pytest.raises(ValueError, match=r"got label_smoothing=0.1"):
        fj.data.check_task(task, label_smoothing=0.1)
    for v in (6, -2):
        bad = task.replace(y_train=task.y_train.at[3, 1].set(v))
        with pytest.raises(ValueError, match=rf"task 'modadd': y_train\[3, 1\] = {v} is out of range: token labels "
                                             r"must be integers in \[-1, 6\) for n_out=6 \(-1: not scored\)"):
            fj.data.check_task(bad)


def test_sweep_refuses_label_smoothing_on_a_token_task():
    task = fj.data.modular_addition(5)
    with pytest.raises(ValueError, match=r"token tasks take loss 'softmax_ce' without label smoothing, got "
                                         r"label_smoothing=0.1"):
        fj.sweep(_model(task), task, seeds=1, steps=10, eval_every=10, label_smoothing=0.1, progress=False)
    with pytest.raises(ValueError, match=r"got loss 'mse'"):
        fj.sweep(_model(task), task, seeds=1, steps=10, eval_every=10, loss="mse", progress=False)


@pytest.mark.parametrize("rule", ["bp", "fa"])
def test_sweep_of_a_linen_token_model_on_modular_addition(rule):
    task = fj.data.modular_addition(7)
    r = fj.sweep(_model(task), task, rule=rule, seeds=2, steps=20, batch_size=16, eval_every=10, progress=False)
    assert r.test_loss.shape == (2, 2) and np.isfinite(r.test_loss).all() and np.isfinite(r.loss).all()
    assert ((r.test_acc >= 0) & (r.test_acc <= 1)).all() and (r.diverged_at < 0).all()
