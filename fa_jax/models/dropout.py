"""Dropout and its variants, train-time only, explicit keys, every one inverted (``E[out] = in``).

Kinds (:data:`KINDS`), each with a rate ``p`` in [0, 1); evaluation is the identity for all:

- ``"bernoulli"`` (Srivastava et al. 2014): keep each unit with probability ``1 - p``, divide
  the kept ones by ``1 - p``.
- ``"gaussian"`` (Srivastava et al. 2014, Sec. 10): multiply each unit by ``1 + sigma eps``,
  ``eps ~ N(0, 1)``, ``sigma^2 = p / (1 - p)`` (the variance of Bernoulli dropout's
  multiplier); no unit is ever fully disconnected.
- ``"dropconnect"`` (Wan et al. 2013): drop *weights* instead of units: the layer runs with
  ``w * M / (1 - p)``, ``M ~ Bernoulli(1 - p)`` of ``w``'s shape. One mask per step, shared
  by the batch (Wan et al. draw one per example; that costs a weight copy per example). It
  replaces unit dropout on that layer's output: ``a((M * W) v)`` instead of ``m * a(W v)``.
- ``"standout"`` (Ba & Frey 2013): unit ``j`` is kept with probability
  ``q_j = sigmoid(alpha * a_j + beta)`` where ``a_j`` is the unit's pre-activation (the value
  its activation receives, after any normalization) -- the standout network with its weights
  tied to the layer's, ``pi = alpha W + beta`` in the paper. Here ``beta = logit(1 - p)``, so a
  unit with ``a_j = 0`` keeps with probability ``1 - p`` and large pre-activations keep with
  probability near 1; ``alpha`` defaults to 1. ``q`` is clipped to ``[0.01, 1]`` and kept out
  of the gradient (it is a sampling probability, as the paper's mask is); kept units are
  divided by ``q``, which makes the expectation exact (the paper scales by ``q`` at test time
  instead; inverted, evaluation is the identity).

Under FA and DFA the mask is part of the forward pass: the error a layer receives
(``delta B^T`` or ``e B_l``) flows back through the same mask and scale as BP's does. Under
DropConnect the layer's op (:class:`DropConnectOp`) runs with the dropped weights *and*, for
the FA family, the dropped feedback ``B * M / (1 - p)``, so FA with ``B = W`` stays BP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.rules import core as rules_core

KINDS = ("bernoulli", "gaussian", "dropconnect", "standout")
UNIT_KINDS = ("bernoulli", "gaussian", "standout")
_MIN_KEEP = 0.01  # standout's smallest keep probability (the 1/q scale stays bounded)


def check_rate(p: float) -> float:
    """Dropout probability must be in [0, 1); one-line ValueError otherwise."""
    checks.number_in("dropout p", p, 0, 1)
    return float(p)


def check_kind(kind: str) -> str:
    """A name from :data:`KINDS` (or ``"none"``); one-line ValueError listing them otherwise."""
    checks.choice("dropout", kind, ("none",) + KINDS)
    return kind


def resolve(dropout: str | float, p: float | None = None) -> tuple[str, float]:
    """``(kind, p)`` from a model builder's ``dropout=`` / ``p=`` options.

    ``dropout`` is a kind name (``"none"`` or one of :data:`KINDS`, rate ``p``, default 0.5) or a
    number, shorthand for Bernoulli dropout at that rate (``p`` then must be None). A kind with
    ``p == 0`` is ``("none", 0.0)``; with ``"none"``, ``p`` is checked and ignored.
    """
    if isinstance(dropout, bool) or not isinstance(dropout, (str, int, float)):
        raise InputError(f"dropout must be one of {', '.join(('none',) + KINDS)} or a rate in [0, 1), got {dropout!r}")
    if not isinstance(dropout, str):
        if p is not None:
            raise InputError(f"dropout={dropout!r} is a Bernoulli rate already; give p only with a dropout kind name")
        kind, rate = "bernoulli", check_rate(dropout)
    else:
        kind = check_kind(dropout)
        rate = check_rate(0.5 if p is None else p)
        rate = 0.0 if kind == "none" else rate
    return ("none", 0.0) if rate == 0 else (kind, rate)


def check_alpha(alpha: float) -> float:
    """Standout's alpha: a finite number (one-line ValueError otherwise)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise InputError(f"standout alpha must be a finite number, got {alpha!r}")
    return float(alpha)


def _needs_key(key, p, train):
    if train and p > 0 and key is None:
        raise InputError("dropout needs a key when train=True and p > 0")


def dropout(key: jax.Array | None, h: jax.Array, p: float, train: bool = True, *, kind: str = "bernoulli",
            pre: jax.Array | None = None, alpha: float = 1.0) -> jax.Array:
    """Unit dropout of ``h`` (any shape) of ``kind`` (:data:`UNIT_KINDS`) at rate ``p``; identity
    when not training or ``p == 0``.

    Args:
        key: a ``jax.random`` key (required when training with p > 0).
        h: the units (e.g. (batch, n) or (batch, H, W, C)).
        p: the rate in [0, 1) (module doc: drop probability; Gaussian noise variance p / (1 - p);
            standout's drop probability at a zero pre-activation).
        train: apply the noise (default True); False is the identity.
        kind: ``"bernoulli"`` (default), ``"gaussian"`` or ``"standout"``.
        pre: standout's pre-activations, shaped like ``h`` (default ``h`` itself).
        alpha: standout's slope (default 1).
    """
    check_rate(p)
    if kind not in UNIT_KINDS:
        raise InputError(f"unit dropout kind must be one of {', '.join(UNIT_KINDS)}, got {kind!r}"
                         + (" (dropconnect drops weights: use DropConnectOp)" if kind == "dropconnect" else ""))
    if not train or p == 0:
        return h
    _needs_key(key, p, train)
    if kind == "gaussian":
        eps = jax.random.normal(key, h.shape, h.dtype)
        return h * (1 + math.sqrt(p / (1 - p)) * eps)
    if kind == "bernoulli":
        q = 1.0 - p
    else:
        a = jax.lax.stop_gradient(h if pre is None else pre)
        q = jnp.clip(jax.nn.sigmoid(alpha * a + math.log((1 - p) / p)), _MIN_KEEP, 1.0).astype(h.dtype)
    keep = jax.random.bernoulli(key, q, h.shape)
    return jnp.where(keep, h / q, jnp.zeros_like(h))


def connect_scale(key: jax.Array, shape: Sequence[int], p: float, dtype: DTypeLike) -> jax.Array:
    """DropConnect's ``M / (1 - p)`` of ``shape``: ``M ~ Bernoulli(1 - p)`` from ``key``."""
    check_rate(p)
    keep = jax.random.bernoulli(key, 1.0 - p, tuple(shape))
    return jnp.where(keep, jnp.asarray(1.0 / (1.0 - p), dtype), jnp.zeros((), dtype))


class DropConnectOp:
    """A rule's layer op run with dropped weights: ``w * M / (1 - p)`` (module doc).

    ``op``: the op the rule hands the layer (:class:`fa_jax.rules.core.LayerOp`); ``key``: this
    layer's key; ``p``: the rate. The mask is drawn from ``key`` for the weight's shape. With an
    FA-family op (:class:`fa_jax.rules.core.FALinear`) the feedback ``B`` gets the same mask and
    ``backward(w, B)`` sees the dropped ``w`` and ``B``; other ops see the dropped weight only.
    The bias is never dropped.
    """

    def __init__(self, op: Callable[..., jax.Array], key: jax.Array, p: float):
        self.op, self.key, self.p = op, key, check_rate(p)

    def _dropped(self, w):
        s = connect_scale(self.key, w.shape, self.p, w.dtype)
        op = self.op
        if isinstance(op, rules_core.FALinear):
            op = rules_core.FALinear(None if op.B is None else op.B * s, op.backward)
        return op, w * s

    def __call__(self, h: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
        op, w = self._dropped(w)
        return op(h, w, b)

    def apply(self, fn: Callable[..., jax.Array], h: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
        if not isinstance(self.op, rules_core.LayerOp):
            raise InputError(f"this rule's layer op {self.op!r} has no conv form (apply(fn, h, w, b)); "
                             f"dropconnect on a conv layer needs one")
        op, w = self._dropped(w)
        return op.apply(fn, h, w, b)


class Dropout:
    """The ``dropout(p, kind=...)`` layer of ``fj.cnn.sequential`` (a layer of :mod:`fa_jax.models.conv`'s form).

    Unit kinds act where the layer stands (standout must directly follow an activation: its
    pre-activation is that activation's input); ``kind="dropconnect"`` drops the weights of its
    block's weighted layer wherever in the block it stands. Shape-preserving, parameter-free.
    """

    weighted = False
    stochastic = True

    def __init__(self, p: float = 0.5, kind: str = "bernoulli", alpha: float = 1.0):
        check_kind(kind)
        if kind == "none":
            raise InputError(f"a dropout layer needs a kind, one of {', '.join(KINDS)}; leave the layer out for none")
        self.p, self.kind, self.alpha = check_rate(p), kind, check_alpha(alpha)

    def __repr__(self):
        return f"Dropout(p={self.p}, kind={self.kind!r}, alpha={self.alpha})"

    def __eq__(self, other):
        return isinstance(other, Dropout) and (self.p, self.kind, self.alpha) == (other.p, other.kind, other.alpha)

    def __hash__(self):
        return hash((Dropout, self.p, self.kind, self.alpha))

    @property
    def connects(self) -> bool:
        """True for DropConnect (the block's op is wrapped, the layer itself is the identity)."""
        return self.kind == "dropconnect"

    def out_shape(self, in_shape: Sequence[int]) -> tuple[int, ...]:
        return tuple(in_shape)

    def apply(self, key: jax.Array | None, h: jax.Array, train: bool, pre: jax.Array | None = None) -> jax.Array:
        """Unit dropout of ``h`` (identity for DropConnect, or when not training)."""
        if self.connects:
            return h
        return dropout(key, h, self.p, train, kind=self.kind, pre=pre, alpha=self.alpha)
