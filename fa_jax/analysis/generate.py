"""Text from a trained sequence model: autoregressive sampling, ``generate(model, params, prompt, n)``.

For a wrapped model whose input is exactly ``context`` token ids (``model.input_shape ==
(context,)``, e.g. :func:`fa_jax.wrap.sequence_models.language_model`): a window of the last
``context`` tokens (first the prompt) goes through ``model.apply``; the logits at its last
position choose the next token, which enters the window as its oldest token leaves. Temperature
0 is greedy (argmax); a temperature T > 0 samples from ``softmax(logits / T)``
(``jax.random.categorical``, one key split off per step). The whole loop is one ``lax.scan``
under ``jax.jit``, one program per model and ``n_new`` for greedy decoding and sampling
alike (the temperature is an argument, not a constant).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from fa_jax import checks
from fa_jax.errors import InputError

if TYPE_CHECKING:
    from fa_jax.models.contract import Model


def _check(model, prompt, n_new, key, temperature) -> np.ndarray:
    """The prompt as (context,) int32; one-line ValueErrors for every bad argument (module doc)."""
    shape = getattr(model, "input_shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 1):
        raise InputError(f"generate needs a model whose input is (batch, context) token ids, got input_shape "
                         f"{shape!r}")
    if getattr(model, "input_dtype", "int32") not in ("int32", "int64"):
        raise InputError(f"generate needs a model that takes integer token ids, this one takes {model.input_dtype}")
    checks.positive_int("generate n_new", n_new, numpy=True)
    if not (checks.is_number(temperature) and math.isfinite(temperature) and temperature >= 0):
        raise InputError(f"generate temperature must be a finite number >= 0 (0: greedy), got {temperature!r}")
    if temperature > 0 and key is None:
        raise InputError(f"generate temperature={temperature!r} samples: pass key= (a jax.random key); "
                         f"temperature 0 is greedy and needs none")
    p = np.asarray(prompt)
    if p.ndim != 1 or (p.size and p.dtype.kind not in "iu"):
        raise InputError(f"generate prompt must be a 1-D array of integer token ids, got {checks.show(prompt)}")
    if p.shape[0] != shape[0]:
        raise InputError(f"generate prompt has {p.shape[0]} tokens; the model reads windows of exactly "
                         f"{shape[0]} (its context): pass the last {shape[0]} tokens")
    n_out = getattr(model, "n_out", None)
    if n_out is not None and p.size and (p.min() < 0 or p.max() >= n_out):
        bad = int(p[(p < 0) | (p >= n_out)][0])
        raise InputError(f"generate prompt holds {bad}, not a token id of this model's {n_out}")
    return p.astype(np.int32)


def _check_params(model, params) -> None:
    """One-line InputError unless ``params`` has the structure and shapes of ``model.init``'s (traced on
    shapes only); a sweep's params, with a leading seed axis, are named as such."""
    ref = jax.eval_shape(model.init, jax.random.key(0))
    want, treedef = jax.tree_util.tree_flatten_with_path(ref)
    try:
        got = treedef.flatten_up_to(params)
    except (TypeError, ValueError):
        raise InputError(f"generate params are not this model's: {_difference(params, ref)}") from None
    leads = set()
    for (path, w), g in zip(want, got):
        shape = tuple(np.shape(g))
        k = len(shape) - len(w.shape)
        if k < 0 or shape[k:] != tuple(w.shape):
            raise InputError(f"generate params are not this model's: {jax.tree_util.keystr(path)} has shape "
                             f"{shape}, the model's is {tuple(w.shape)}")
        leads.add(shape[:k])
    lead = leads.pop() if len(leads) == 1 else None
    if lead == ():
        return
    if lead is None:
        raise InputError(f"generate params have leading axes {sorted(leads)} of different sizes before the model's "
                         f"shapes; pass one model's params")
    if len(lead) == 1:
        raise InputError(f"generate takes one model's params, but these have a leading seed axis of size {lead[0]} "
                         f"(a sweep's res.state.params): select one seed, e.g. "
                         f"jax.tree.map(lambda a: a[0], res.state.params)")
    index = ", ".join("0" * len(lead))
    raise InputError(f"generate takes one model's params, but these have {len(lead)} leading axes {lead} before the "
                     f"model's shapes: select one model, e.g. jax.tree.map(lambda a: a[{index}], params)")


def _difference(params, ref) -> str:
    """Where the pytree ``params`` first departs from ``ref`` (model.init's), in words."""
    if type(params) is not type(ref):
        return f"they are a {type(params).__name__}, model.init gives a {type(ref).__name__}"

    def paths(t):
        return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(t)[0]]

    got, want = paths(params), paths(ref)
    missing = [p for p in want if p not in got]
    if missing:
        return f"they have no {missing[0]}, which model.init has"
    extra = [p for p in got if p not in want]
    return f"they have {extra[0]}, which model.init has not" if extra else "their pytree nodes differ from model.init's"


@functools.partial(jax.jit, static_argnames=("model", "n_new"))
def _generate(model, params, prompt, key, temperature, *, n_new):
    """One program for greedy (``temperature`` 0) and sampling alike: the temperature is traced."""
    hot = temperature > 0

    def step(carry, _):
        window, key = carry
        logits = model.apply(params, window[None])[0, -1]
        key, sub = jax.random.split(key)
        sampled = jax.random.categorical(sub, logits / jnp.where(hot, temperature, 1.0))
        tok = jnp.where(hot, sampled, jnp.argmax(logits)).astype(jnp.int32)
        return (jnp.concatenate([window[1:], tok[None]]), key), tok

    _, new = jax.lax.scan(step, (prompt, key), None, length=n_new)
    return new


def generate(model: Model, params: Any, prompt: ArrayLike, n_new: int, *, key: jax.Array | None = None,
             temperature: float = 0.0) -> np.ndarray:
    """``n_new`` token ids that ``model`` writes after ``prompt`` (module doc).

    Args:
        model: a wrapped sequence model, input (batch, context) int token ids, logits
            (batch, context, vocab).
        params: one model's params (no seed axis: slice a sweep's ``state.params`` first).
        prompt: (context,) int token ids, exactly the model's context.
        n_new: tokens to write, an int >= 1.
        key: a ``jax.random`` key; needed when ``temperature > 0``.
        temperature: 0 (default) greedy; > 0 sample from ``softmax(logits / temperature)``.

    Returns:
        (n_new,) int32 numpy array of the new token ids (the prompt not included).

    Raises:
        ValueError: one line, for a model that does not take (batch, context) token ids, params
            that are not one model's (a sweep's, with their seed axis, are named as such), a prompt
            of another length or with ids outside the vocabulary, n_new < 1, a negative or
            non-finite temperature, or a missing key when sampling.
    """
    p = _check(model, prompt, n_new, key, temperature)
    _check_params(model, params)
    k = jax.random.key(0) if key is None else key  # greedy: drawn from, never used
    out = _generate(model, params, jnp.asarray(p), k, jnp.float32(temperature), n_new=int(n_new))
    return np.asarray(out)
