"""Weight-shared conv feedback for the DFA family: ``dfa(conv=shared)``, ``sdfa(conv=shared; k=5)``, ...

The option ``conv`` of ``dfa``, ``sdfa`` and ``drtp`` picks how a hidden activation of shape
(H, W, C) (a conv block's output) receives the rule's source ``s`` (n_out,) per example (``e``,
``sign(e)`` or the target):

- ``"dense"`` (default; the plain names): ``s @ B_l``, ``B_l`` of shape (n_out, H W C), reshaped.
- ``"shared"``: ``conv(tile(s), K_l)``: ``s`` broadcast to the spatial grid (H, W, n_out) and
  convolved with one kernel ``K_l`` of shape (k, k, n_out, C), stride 1, SAME (zero) padding
  ``p = (k - 1) / 2``, ``k`` odd (option ``k``, default 3)::

      signal[i, j, c] = sum_{a, b < k; 0 <= i+a-p < H; 0 <= j+b-p < W} sum_o s[o] K_l[a, b, o, c]

  Hidden activations that are flat (h,) keep the dense (n_out, h) matrix.

This is biotorch's DFA conv layer (``biotorch/layers/dfa/conv.py``, ``dfa_backward_hook``): the
loss gradient (batch, n_out) is repeated over the layer's output grid and sent to the layer's
input by ``torch.nn.grad.conv2d_input`` with a fixed kernel (n_out, C_in, k, k) and the
layer's own stride and padding. For stride 1 and SAME padding that transposed convolution is the
correlation above with the kernel flipped in space (and its channel axes in our HWIO order),
the same family of random maps. Differences: here the signal enters each hidden block's output
with its own kernel size ``k`` (stride 1), where biotorch enters each conv layer's input with
that layer's geometry.

Caveat (inherent to the scheme): a spatially constant input through a SAME convolution is
constant except within ``p`` pixels of the border, so every interior position of a channel gets
the same signal; position-specific credit comes only from the border and from the forward
pass (the local derivatives of the block). Dense feedback has none of this structure.

Init (:func:`fa_jax.init_feedback`): as any feedback array, ``std = scale / sqrt(m)`` with
``fans`` of a kernel (k, k, n_out, C): ``scaling="fan_in"`` (default) gives
``m = k^2 n_out``, so that a signal entry (a sum of up to ``k^2 n_out`` terms) has the variance of
dense DFA's ``1/sqrt(n_out)`` draw; biotorch's ``xavier_uniform_`` on (n_out, C, k, k) is
``dist="uniform", scaling="fan_avg"`` (``m = k^2 (n_out + C) / 2``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import contract

if TYPE_CHECKING:
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule

CONV = ("dense", "shared")


def shared_shapes(model: Model, k: int) -> list[tuple[int, ...]]:
    """One feedback shape per hidden activation: (k, k, n_out, C) for (H, W, C), (n_out, h) for flat ones."""
    n = model.n_out
    return [(k, k, n, s[-1]) if len(s) == 3 else (n, math.prod(s))
            for s in contract.hidden_shapes(model, "DFA-family feedback")]


def conv_signal(source: jax.Array, K: jax.Array, h: jax.Array) -> jax.Array:
    """``conv(tile(source), K)`` shaped like ``h`` (module doc).

    source: (..., n_out); K: (k, k, n_out, C); h: (..., H, W, C) (only its shape and dtype are read).
    """
    batch = source.shape[:-1]
    H, W, _ = h.shape[len(batch):]
    s = source.reshape(-1, 1, 1, source.shape[-1])
    tiled = jnp.broadcast_to(s, (s.shape[0], H, W, s.shape[-1])).astype(K.dtype)
    out = jax.lax.conv_general_dilated(tiled, K, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out.reshape(batch + out.shape[1:]).astype(h.dtype)


def with_conv(rule: Rule, conv: str = "dense", k: int | None = None) -> Rule:
    """The DFA-family ``rule`` with conv feedback ``conv`` (module doc); ``"dense"`` is ``rule`` itself.

    One-line ValueErrors for an unknown ``conv``, a ``k`` that is not an odd positive int, or a
    ``k`` with ``conv="dense"`` (it has no kernel).
    """
    checks.choice(f"{rule.name} option conv", conv, CONV)
    if conv == "dense":
        if k is not None:
            raise InputError(f"rule {rule.name!r}: option k is the kernel size of conv=shared; conv=dense has none")
        return rule
    k = 3 if k is None else k
    if not checks.is_positive_int(k) or k % 2 == 0:
        raise InputError(f"rule {rule.name!r}: k must be an odd positive int (1, 3, 5, ...), got {k!r}")
    return dataclasses.replace(rule, feedback_shapes=functools.partial(shared_shapes, k=k),
                               doc=f"{rule.doc}; conv blocks: shared {k}x{k} kernels (n_out -> C), SAME")


def factory(rule: Rule) -> Callable[..., Rule]:
    """``factory(conv="dense", k=None) -> Rule``: the spec options of a DFA-family rule (``register_factory``)."""

    def make(conv: str = "dense", k: int | None = None) -> Rule:
        return with_conv(rule, conv, k)

    make.__doc__ = f"rule {rule.name!r} with conv feedback ``conv`` (dense, shared) and kernel size ``k`` (odd)."
    return make
