"""Bring your own model: :func:`from_flax` wraps a Flax model (linen or NNX) for every rule.

:mod:`fa_jax.wrap.model` (the wrapper and its feedback), :mod:`fa_jax.wrap.discover` (what
tracing the model once finds), :mod:`fa_jax.wrap.wiring` (what a rule does at each layer call),
:mod:`fa_jax.wrap.linen` and :mod:`fa_jax.wrap.nnx` (the two adapters, with their
:class:`DFAPoint` markers).
"""

from fa_jax.wrap.model import FlaxModel, from_flax

__all__ = ["FlaxModel", "from_flax"]
