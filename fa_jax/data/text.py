"""Character-level language modelling on English text every CPython ships: :func:`char_lm`.

Corpus (:func:`corpus`): the values of the standard library's ``pydoc_data.topics.topics``
(the language reference's help topics) joined in sorted-key order, ~465k characters on
Python 3.11. CPython regenerates it for each release, so the text varies slightly across
Python versions: record :func:`corpus_info` (version, length, sha256) with a run's config.

Vocabulary (:data:`VOCAB`, 97 tokens, the same on every Python version): ``"\\n"`` (id 0),
the 95 printable ASCII characters chr(32)..chr(126) (ids 1..95), and a last "other" token
(:data:`OTHER`, id 96) for every other character (typographic quotes and dashes, ...);
:func:`decode` writes it as ``"\\u00bf"`` (an inverted question mark, not ASCII, so a
decoded text shows where they were).

Labels are token labels (``fa_jax.losses``): y (n, context) int32 is x shifted by one,
every position scored; :func:`bits_per_char` turns the softmax_ce loss into bits per character.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from fa_jax import checks
from fa_jax.data.task import Task
from fa_jax.errors import InputError

OTHER_CHAR = "\u00bf"
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127)) + OTHER_CHAR
"""The 97 tokens: ``"\\n"``, chr(32)..chr(126), then :data:`OTHER` (decoded as ``"\\u00bf"``)."""
OTHER = len(VOCAB) - 1

_IDS = np.full(128, OTHER, np.int32)  # code point (< 128) -> token id
_IDS[10] = 0
_IDS[32:127] = np.arange(1, 96)
_CHARS = np.asarray(list(VOCAB))

_Nats = TypeVar("_Nats", float, jax.Array, np.ndarray)


@functools.lru_cache(maxsize=1)
def corpus() -> str:
    """The corpus text (module doc): ``"".join(topics[k] for k in sorted(topics))``."""
    from pydoc_data.topics import topics  # noqa: PLC0415  (loaded on first use)

    return "".join(topics[k] for k in sorted(topics))


def corpus_info() -> dict:
    """``{"python", "n_chars", "sha256"}`` of this interpreter's corpus (sha256 of its UTF-8 bytes; for run configs)."""
    text = corpus()
    return {"python": ".".join(str(v) for v in sys.version_info[:3]), "n_chars": len(text),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def encode(text: str) -> np.ndarray:
    """Token ids (len(text),) int32 of :data:`VOCAB`; a character outside it is :data:`OTHER`."""
    if not isinstance(text, str):
        raise InputError(f"encode takes a str, got {type(text).__name__}")
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    return np.where(cp < 128, _IDS[np.minimum(cp, 127)], OTHER).astype(np.int32)


def decode(ids: ArrayLike) -> str:
    """The text of token ids (a 1-D int array or list in [0, 97)); :data:`OTHER` reads ``"\\u00bf"``."""
    a = np.asarray(ids)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise InputError(f"decode takes a 1-D array of integer token ids, got {checks.show(ids)}")
    bad = (a < 0) | (a >= len(VOCAB))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"decode: ids[{i}] = {a[i].item()!r} is not a token id; ids must be in [0, {len(VOCAB)})")
    return "".join(_CHARS[a.astype(np.intp)].tolist())


def bits_per_char(nats: _Nats) -> _Nats:
    """A mean softmax cross-entropy in nats per token as bits per character (``nats / ln 2``);
    floats and arrays alike."""
    return nats / math.log(2)


def windows(key: jax.Array, tokens: jax.Array, context: int, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """Random windows of ``context + 1`` tokens from ``tokens`` (N,) int32, starts uniform in
    [0, N - context - 1]: x = w[:, :-1], y = w[:, 1:], both (batch, context) int32."""
    start = jax.random.randint(key, (batch_size, 1), 0, tokens.shape[0] - context)
    w = tokens[start + jnp.arange(context + 1)]
    return w[:, :-1], w[:, 1:]


def _sample(task, key, batch_size):
    return windows(key, task.aux["train_tokens"], task.n_in, batch_size)


def char_lm(context: int = 64, *, val_fraction: float = 0.1, n_val: int = 128, name: str = "pydoc") -> Task:
    """Next-character prediction on the pydoc corpus (module doc), windows of ``context`` tokens.

    A fixed contiguous split: the first ``1 - val_fraction`` of the encoded corpus trains, the
    rest validates. Training batches are random windows of the training part, drawn on the
    device (:func:`windows`, pure in the key); the test set is the first ``n_val``
    non-overlapping windows of ``context + 1`` tokens of the validation part.

    Args:
        context: tokens per input, an int >= 1 (default 64).
        val_fraction: the validation part, in (0, 1) (default 0.1).
        n_val: test windows, an int >= 1 (default 128), at most the validation part's
            length // (context + 1).
        name: the task's name (default ``"pydoc"``).

    Returns:
        A :class:`Task` with x_test, y_test (n_val, context) int32 (y is x shifted by one),
        no fixed training set (``aux["train_tokens"]``, (N_train,) int32, feeds the sampler),
        ``n_in = context``, ``n_out = 97``, default loss softmax_ce, ``input_shape`` None.
    """
    checks.positive_int("char_lm context", context, numpy=True)
    checks.number_in("char_lm val_fraction", val_fraction, 0, 1, lo_open=True)
    checks.positive_int("char_lm n_val", n_val, numpy=True)
    if not isinstance(name, str) or not name:
        raise InputError(f"char_lm name must be a non-empty str, got {name!r}")
    tokens = encode(corpus())
    split = int(len(tokens) * (1 - val_fraction))
    train, val = tokens[:split], tokens[split:]
    if len(train) < context + 1:
        raise InputError(f"char_lm context={context} needs a training text of at least context + 1 = {context + 1} "
                         f"tokens; val_fraction={val_fraction!r} leaves {len(train)}")
    most = len(val) // (context + 1)
    if n_val > most:
        raise InputError(f"char_lm n_val={n_val} is too many: the validation text ({len(val)} tokens) holds at most "
                         f"{most} windows of context + 1 = {context + 1} tokens")
    w = val[:n_val * (context + 1)].reshape(n_val, context + 1)
    return Task(x_test=jnp.asarray(w[:, :-1]), y_test=jnp.asarray(w[:, 1:]), aux={"train_tokens": jnp.asarray(train)},
                name=name, n_in=context, n_out=len(VOCAB), default_loss="softmax_ce", sampler=_sample)
