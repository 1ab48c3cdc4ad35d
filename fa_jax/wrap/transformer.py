"""A small decoder-only transformer language model in Flax (linen), for every rule through ``fj.from_flax``.

Token and learned position embeddings (``nn.Embed``), ``n_blocks`` pre-norm blocks (causal
multi-head self-attention with ``nn.MultiHeadDotProductAttention``, then a GELU MLP, each
``x + sublayer(LayerNorm(x))``), a final ``nn.LayerNorm`` and a ``nn.Dense`` unembedding (not
tied to the embedding). Input: token ids (batch, T) int32 with ``T <= context``; output: per-token
logits (batch, T, vocab). Wrap it with :func:`language_model` (or ``fj.from_flax(model, (T,),
input_dtype="int32")``).

DFA points (``fa_jax.DFAPoint`` markers; they matter only under the DFA family), as in Launay et
al. 2020's code (lightonai/dfa-scales-to-modern-deep-learning, ``transformer.py``), there on
post-norm blocks, here on pre-norm ones:

- ``points="macro"``: one point per block, at its output (the residual stream after the MLP);
- ``points="micro"``: three per block: the residual stream after the attention sublayer
  (``x + attn(LN(x))``), the MLP's hidden activation (after GELU), and the block output.

Each point receives ``e @ B`` per token (``B`` of shape (source size, d) for one token); no gradient
crosses a point, so each block (macro) or sublayer (micro) learns from its own signal by BP
inside it. ``e`` is the per-token gradient of the loss at the logits (``error_at="logits"``, the
default: the final norm and the unembedding get their true gradients), or at the last block's
output (``error_at="last_block"``, Launay et al.'s default: a :class:`fa_jax.DFAOutput` marker
there, so the final norm and unembedding train by BP and ``B`` is (d, d)). The embeddings are
trained by the signal that reaches them by BP through the first block from its first point
(under the FA family: through the blocks' ``B``); the position embedding alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flax.linen as nn
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.wrap.linen import DFAOutput, DFAPoint

if TYPE_CHECKING:
    import jax

POINTS = ("macro", "micro")
ERROR_AT = ("logits", "last_block")


def check_sizes(vocab: int, context: int, d_model: int, n_heads: int, n_blocks: int, d_ff: int | None, points: str,
                error_at: str) -> None:
    """One-line ValueErrors for bad sizes and options (module doc), before anything is traced."""
    for name, v in (("vocab", vocab), ("context", context), ("d_model", d_model), ("n_heads", n_heads),
                    ("n_blocks", n_blocks)):
        checks.positive_int(name, v)
    if vocab < 2:
        raise InputError(f"vocab must be >= 2 tokens, got {vocab!r}")
    if d_ff is not None:
        checks.positive_int("d_ff", d_ff)
    if d_model % n_heads:
        raise InputError(f"n_heads={n_heads} does not divide d_model={d_model}: each head has d_model / n_heads "
                         f"features")
    if points not in POINTS:
        raise InputError(f"points must be one of {', '.join(POINTS)}, got {points!r}")
    if error_at not in ERROR_AT:
        raise InputError(f"error_at must be one of {', '.join(ERROR_AT)}, got {error_at!r}")


class Block(nn.Module):
    """A pre-norm block: ``x + attn(LN(x))``, then ``x + W2 gelu(W1 LN(x))``; (batch, T, d) -> same."""

    d_model: int
    n_heads: int
    d_ff: int
    points: str = "macro"
    param_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        pd = self.param_dtype
        h = nn.LayerNorm(name="ln_attn", param_dtype=pd)(x)
        h = nn.MultiHeadDotProductAttention(num_heads=self.n_heads, qkv_features=self.d_model, param_dtype=pd,
                                            name="attn")(h, mask=mask)
        x = x + h
        if self.points == "micro":
            x = DFAPoint(name="after_attn")(x)
        h = nn.gelu(nn.Dense(self.d_ff, name="mlp_in", param_dtype=pd)(nn.LayerNorm(name="ln_mlp", param_dtype=pd)(x)))
        if self.points == "micro":
            h = DFAPoint(name="mlp_hidden")(h)
        x = x + nn.Dense(self.d_model, name="mlp_out", param_dtype=pd)(h)
        return DFAPoint(name="out")(x)


class TransformerLM(nn.Module):
    """Decoder-only transformer LM (module doc): tokens (batch, T) int -> logits (batch, T, vocab).

    vocab: tokens in and out; context: the longest T (the position embedding's size);
    d_model, n_heads (dividing d_model), n_blocks, d_ff (default 4 d_model); points: "macro" or
    "micro"; error_at: "logits" or "last_block"; param_dtype: of every param (default float32).
    """

    vocab: int
    context: int
    d_model: int = 64
    n_heads: int = 4
    n_blocks: int = 2
    d_ff: int | None = None
    points: str = "macro"
    error_at: str = "logits"
    param_dtype: str = "float32"

    def __post_init__(self) -> None:
        check_sizes(self.vocab, self.context, self.d_model, self.n_heads, self.n_blocks, self.d_ff, self.points,
                    self.error_at)
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        T = tokens.shape[-1]
        if T > self.context:
            raise InputError(f"sequence length {T} is longer than the model's context {self.context}")
        pd = self.param_dtype
        x = nn.Embed(self.vocab, self.d_model, name="embed", param_dtype=pd)(tokens)
        x = x + nn.Embed(self.context, self.d_model, name="pos", param_dtype=pd)(jnp.arange(T))
        mask = nn.make_causal_mask(tokens)  # (batch, 1, T, T): position t attends to positions <= t
        for i in range(self.n_blocks):
            x = Block(self.d_model, self.n_heads, self.d_ff or 4 * self.d_model, self.points, pd,
                      name=f"block_{i}")(x, mask)
        if self.error_at == "last_block":
            x = DFAOutput(name="error")(x)
        return nn.Dense(self.vocab, name="unembed", param_dtype=pd)(nn.LayerNorm(name="ln_final", param_dtype=pd)(x))
