"""The bundled sequence models by name, wrapped for every rule: ``language_model("transformer", vocab, T)``.

- ``"transformer"``: :class:`fa_jax.wrap.transformer.TransformerLM` (options ``d_model``, ``n_heads``,
  ``n_blocks``, ``d_ff``, ``points`` macro|micro, ``error_at`` logits|last_block);
- ``"gru"`` and ``"elman"``: :class:`fa_jax.wrap.recurrent.RecurrentLM` with that cell (options
  ``d_hidden``, ``d_embed``, ``n_layers``).

Every one maps token ids (batch, T) int32 to per-token logits (batch, T, vocab).
"""

from __future__ import annotations

from typing import Any

from fa_jax.errors import InputError
from fa_jax.wrap.model import FlaxModel, from_flax
from fa_jax.wrap.recurrent import RecurrentLM
from fa_jax.wrap.transformer import TransformerLM

SEQUENCE_MODELS = ("transformer", "gru", "elman")


def module(kind: str, vocab: int, context: int, **options: Any) -> TransformerLM | RecurrentLM:
    """The linen module ``kind`` (module doc) for ``vocab`` tokens and sequences of ``context`` tokens."""
    if kind == "transformer":
        return TransformerLM(vocab=vocab, context=context, **options)
    if kind in ("gru", "elman"):
        return RecurrentLM(vocab=vocab, cell=kind, **options)
    raise InputError(f"sequence model must be one of {', '.join(SEQUENCE_MODELS)}, got {kind!r}")


def language_model(kind: str, vocab: int, context: int, **options: Any) -> FlaxModel:
    """``fj.from_flax`` of :func:`module`: inputs (batch, context) int32 token ids, logits (batch, context, vocab).

    A one-line ValueError for an unknown kind or option, bad sizes (heads not dividing d_model, ...)."""
    try:
        m = module(kind, vocab, context, **options)
    except TypeError as e:  # an option the model does not take
        raise InputError(f"sequence model {kind!r}: {str(e).splitlines()[0]}") from None
    return from_flax(m, (context,), input_dtype="int32")
