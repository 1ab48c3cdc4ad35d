"""Synthetic sequence tasks with exact answers: associative recall and modular addition.

Both use token labels (``fa_jax.losses``): x (n, T) int32 token ids, y (n, T) int32 with the
answer at the last position and -1 (not scored) everywhere else, default loss softmax_ce;
a model maps (batch, T) ids to (batch, T, V) logits. Arrays stay on the device.

- :func:`associative_recall`: ``k_1 v_1 ... k_n v_n q`` (T = 2n + 1), the keys distinct
  within a sequence, from [0, n_keys); values from [n_keys, n_keys + n_values), independent
  and with replacement; q one of the sequence's keys, uniform; the answer is q's value.
  Training samples are fresh on the device (:func:`recall_batch`, pure in the key); the test
  set is drawn once from ``fold_in(key(test_seed), TEST_STREAM)``, a key no training step
  uses (those are split from ``key(seed)``).
- :func:`modular_addition`: ``a b =`` (T = 3, "=" the token p) for all p * p pairs; the answer
  is (a + b) mod p; a fixed random split of the pairs (the grokking task: Power et al. 2022,
  "Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fa_jax import checks
from fa_jax.data.task import Task, sample_fixed
from fa_jax.errors import InputError
from fa_jax.training import memory

TEST_STREAM = 0x7E57  # folded into key(test_seed): the recall test set's own stream


def _answer_last(answers, t: int):
    """(n, t) int32 labels: ``answers`` (n,) at the last position, -1 elsewhere."""
    return jnp.full((answers.shape[0], t), -1, jnp.int32).at[:, -1].set(answers.astype(jnp.int32))


def recall_batch(key: jax.Array, n_pairs: int, n_keys: int, n_values: int, batch_size: int
                 ) -> tuple[jax.Array, jax.Array]:
    """Fresh recall sequences (module doc): x (batch, 2 n_pairs + 1) int32 and y (batch, 2 n_pairs + 1)
    int32, the queried key's value at the last position, -1 elsewhere."""
    k_key, k_val, k_q = jax.random.split(key, 3)
    ids = jnp.broadcast_to(jnp.arange(n_keys, dtype=jnp.int32), (batch_size, n_keys))
    keys = jax.random.permutation(k_key, ids, axis=1, independent=True)[:, :n_pairs]
    values = jax.random.randint(k_val, (batch_size, n_pairs), n_keys, n_keys + n_values, jnp.int32)
    q = jax.random.randint(k_q, (batch_size, 1), 0, n_pairs)
    query = jnp.take_along_axis(keys, q, axis=1)
    x = jnp.concatenate([jnp.stack([keys, values], axis=2).reshape(batch_size, 2 * n_pairs), query], axis=1)
    return x, _answer_last(jnp.take_along_axis(values, q, axis=1)[:, 0], 2 * n_pairs + 1)


def _sample_recall(task, key, batch_size):
    n_keys = task.aux["key_ids"].shape[0]
    return recall_batch(key, (task.n_in - 1) // 2, n_keys, task.n_out - n_keys, batch_size)


def _check_name(what, name):
    if not isinstance(name, str) or not name:
        raise InputError(f"{what} name must be a non-empty str, got {name!r}")


def associative_recall(n_pairs: int = 8, n_keys: int = 16, n_values: int = 16, n_test: int = 1024, *,
                       test_seed: int = 0, name: str = "recall") -> Task:
    """Associative recall (module doc): recall the value stored with the queried key.

    Args:
        n_pairs: key-value pairs per sequence, 1 <= n_pairs <= n_keys (default 8).
        n_keys: key tokens 0..n_keys-1 (default 16).
        n_values: value tokens n_keys..n_keys+n_values-1 (default 16).
        n_test: test sequences (default 1024), drawn once from ``test_seed`` (module doc).
        test_seed: an int in [0, 2**32) (default 0).
        name: the task's name (default ``"recall"``).

    Returns:
        A :class:`Task` with fresh training samples, x_test, y_test (n_test, 2 n_pairs + 1) int32,
        ``aux["key_ids"]`` (n_keys,), ``n_in = 2 n_pairs + 1``, ``n_out = n_keys + n_values``,
        default loss softmax_ce, ``input_shape`` None.
    """
    for nm, v in (("n_pairs", n_pairs), ("n_keys", n_keys), ("n_values", n_values), ("n_test", n_test)):
        checks.positive_int(f"associative_recall {nm}", v, numpy=True)
    if n_pairs > n_keys:
        raise InputError(f"associative_recall n_pairs={n_pairs} > n_keys={n_keys}: the keys of a sequence are "
                         f"distinct, so need n_pairs <= n_keys")
    checks.integer("associative_recall test_seed", test_seed, 0, 2**32, hi_open=True, numpy=True)
    _check_name("associative_recall", name)
    t = 2 * n_pairs + 1
    memory.check_bytes(8 * n_test * t, f"the recall test set ({n_test} sequences of {t} tokens)")
    key = jax.random.fold_in(jax.random.key(int(test_seed)), TEST_STREAM)
    x_test, y_test = recall_batch(key, n_pairs, n_keys, n_values, n_test)
    return Task(x_test=x_test, y_test=y_test, aux={"key_ids": jnp.arange(n_keys, dtype=jnp.int32)}, name=name,
                n_in=t, n_out=n_keys + n_values, default_loss="softmax_ce", sampler=_sample_recall)


def modular_addition(p: int = 97, train_fraction: float = 0.5, *, split_seed: int = 0, name: str = "modadd") -> Task:
    """Modular addition (module doc): ``[a, b, p]`` -> (a + b) mod p at the last position.

    The p * p pairs (a, b), in the order ``a * p + b``, are permuted by
    ``np.random.default_rng(split_seed)``; the first ``int(train_fraction * p * p)`` form the
    fixed training set (:func:`fa_jax.data.sample_fixed` mini-batches), the rest the test set.

    Args:
        p: the modulus, an int >= 2 (default 97); tokens 0..p-1 are numbers, p is "=".
        train_fraction: the training share of the pairs, in (0, 1) (default 0.5).
        split_seed: the split's permutation (default 0).
        name: the task's name (default ``"modadd"``).

    Returns:
        A :class:`Task` with x, y (n, 3) int32 (train and test), ``n_in = 3``, ``n_out = p + 1``,
        default loss softmax_ce, ``input_shape`` None.
    """
    checks.integer("modular_addition p", p, 2, numpy=True)
    checks.number_in("modular_addition train_fraction", train_fraction, 0, 1, lo_open=True)
    checks.integer("modular_addition split_seed", split_seed, 0, numpy=True)
    _check_name("modular_addition", name)
    p, m = int(p), int(p) * int(p)
    n_train = int(train_fraction * m)
    if not 0 < n_train < m:
        raise InputError(f"modular_addition train_fraction={train_fraction!r} with p={p} puts {n_train} of the {m} "
                         f"pairs in the training set; both sides need at least one")
    memory.check_bytes(24 * m, f"the modular-addition data ({m} pairs)")
    pair = np.random.default_rng(split_seed).permutation(m)
    a, b = pair // p, pair % p
    x = np.stack([a, b, np.full(m, p)], axis=1).astype(np.int32)
    y = np.full((m, 3), -1, np.int32)
    y[:, -1] = (a + b) % p
    return Task(x_test=jnp.asarray(x[n_train:]), y_test=jnp.asarray(y[n_train:]), x_train=jnp.asarray(x[:n_train]),
                y_train=jnp.asarray(y[:n_train]), name=name, n_in=3, n_out=p + 1, default_loss="softmax_ce",
                sampler=sample_fixed)
