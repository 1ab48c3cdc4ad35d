"""Inverted dropout (Srivastava et al. 2014; the introductory deep-learning lectures): train-time
only, explicit keys.

Training keeps each unit with probability ``1 - p`` and divides the kept ones by ``1 - p``,
so ``E[dropout(h)] = h``; evaluation is the identity. Under FA and DFA the mask is part of
the forward pass: the error signal a layer receives (``delta B^T`` or ``e B_l``) flows back
through the same mask and ``1 / (1 - p)`` factor, exactly as BP's does.
"""

import jax
import jax.numpy as jnp

from fa_jax import checks


def check_rate(p) -> float:
    """Dropout probability must be in [0, 1); one-line ValueError otherwise."""
    checks.number_in("dropout p", p, 0, 1)
    return float(p)


def dropout(key, h, p: float, train: bool = True):
    """Inverted dropout of ``h`` (any shape) with drop probability ``p``; identity when not training.

    key: a ``jax.random`` key (required when training with p > 0).
    """
    check_rate(p)
    if not train or p == 0:
        return h
    if key is None:
        raise ValueError("dropout needs a key when train=True and p > 0")
    keep = jax.random.bernoulli(key, 1.0 - p, h.shape)
    return jnp.where(keep, h / (1.0 - p), jnp.zeros_like(h))
