"""A recurrent language model in Flax (linen): a GRU or an Elman RNN over the sequence, for every rule.

``nn.Embed`` -> ``n_layers`` x ``nn.RNN(cell)`` (``lax.scan`` over time through Flax's lifted scan;
``nn.GRUCell`` or ``nn.SimpleCell``, the Elman RNN ``h_t = tanh(W_i x_t + W_h h_{t-1} + b)``) ->
``nn.Dense`` unembedding. Input: token ids (batch, T) int32; output: per-token logits (batch, T,
vocab). Each RNN layer's output sequence is a :class:`fa_jax.DFAPoint` (``h<i>``).

What each rule does (:mod:`fa_jax.wrap.wiring`, recurrent cells):

- **bp**: backpropagation through time.
- **FA family**: every ``Dense`` inside the cell sends ``delta @ B.T`` to its input: to ``x_t``
  through the input kernels and to ``h_{t-1}`` through the recurrent ones, so the feedback runs
  back through time along ``B``, not ``W``. With ``B = W`` it is BPTT exactly.
- **DFA family**: each step's hidden state ``h_t`` receives ``e_t @ B`` (``e_t`` the gradient at
  step t's logits, ``B`` of shape (vocab, d_hidden), one for all steps) and the cell's carry
  enters through ``stop_gradient``: no signal through time. The cell's weights learn
  ``(e_t B) dh_t/dW`` at a fixed ``h_{t-1}``, so credit for what an earlier step stored reaches
  that step only through the projection of its own error; a memory that pays off only steps
  later is never credited directly. The embedding learns from the first layer's signal through
  the cell's input kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flax.linen as nn

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.wrap.linen import DFAPoint

if TYPE_CHECKING:
    import jax

CELLS = {"gru": nn.GRUCell, "elman": nn.SimpleCell}


class RecurrentLM(nn.Module):
    """Recurrent LM (module doc): tokens (batch, T) int -> logits (batch, T, vocab).

    vocab: tokens in and out; d_hidden: the state size; d_embed: the embedding size (default
    d_hidden); cell: "gru" or "elman"; n_layers: stacked RNN layers.
    """

    vocab: int
    d_hidden: int = 128
    d_embed: int | None = None
    cell: str = "gru"
    n_layers: int = 1
    param_dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("vocab", "d_hidden", "n_layers"):
            checks.positive_int(name, getattr(self, name))
        if self.d_embed is not None:
            checks.positive_int("d_embed", self.d_embed)
        if self.vocab < 2:
            raise InputError(f"vocab must be >= 2 tokens, got {self.vocab!r}")
        if self.cell not in CELLS:
            raise InputError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        pd = self.param_dtype
        x = nn.Embed(self.vocab, self.d_embed or self.d_hidden, name="embed", param_dtype=pd)(tokens)
        for i in range(self.n_layers):
            x = nn.RNN(CELLS[self.cell](self.d_hidden, param_dtype=pd, name=f"cell_{i}"), name=f"rnn_{i}")(x)
            x = DFAPoint(name=f"h{i}")(x)
        return nn.Dense(self.vocab, name="unembed", param_dtype=pd)(x)
