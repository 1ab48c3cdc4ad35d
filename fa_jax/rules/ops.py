"""The ops a rule hands each weighted layer, and the DFA family's output node.

A weighted layer runs its map through the op its rule gives it (:class:`LayerOp`): ``op(h, w, b)``
for a dense layer, ``op.apply(fn, h, w, b)`` for any other map ``fn(h, w)`` linear in ``w`` (a
convolution, a transposed convolution), ``op.layer(fn, h, p, plain)`` for a layer of a wrapped Flax
model (``fn(h, p)`` with the kernel at ``p["kernel"]``). BP's op (:data:`linear`) is the plain map;
the FA family's (:class:`FALinear`) sends ``delta @ B.T`` to the layer's input where BP sends
``delta @ W.T`` (Lillicrap et al. 2016). :func:`dfa_output` is the DFA family's output node: it
sends ``e @ B_l`` to every hidden activation ``h_l`` (Nøkland 2016, eq. 3) in one matmul.
Conventions: ``W`` of shape (fan_in, fan_out), ``h' = h W + b``, ``e = dL/dy``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from fa_jax.errors import InputError
from fa_jax.rules.conv_feedback import conv_signal

Map = Callable[[jax.Array, jax.Array], jax.Array]  # fn(h, w): a map linear in w (a conv, a transposed conv)
LayerFn = Callable[[jax.Array, Any], jax.Array]  # fn(h, p): a wrapped Flax layer's functional forward
Backward = Callable[[jax.Array, Any], jax.Array]  # backward(w, B) -> B_used (B: the fixed feedback or None)


@runtime_checkable
class LayerOp(Protocol):
    """What a rule hands each weighted layer: how to run its map so that ``jax.grad`` is the rule.

    The ops of :meth:`fa_jax.Rule.op` (:data:`linear`, :class:`FALinear`) also have
    ``layer(fn, h, p, plain)``, what a wrapped Flax layer runs: ``fn(h, p)`` its functional forward
    (affine in ``h``, linear in ``p["kernel"]``), ``plain(h)`` the layer's own call (the same map).
    """

    def __call__(self, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        """Dense: ``h @ w + b``.  h: (..., fan_in), w: (fan_in, fan_out), b: (fan_out,)."""

    def apply(self, fn: Map, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        """Any map linear in w (``fn(h, w)``: a conv, a transposed conv), plus the bias b (features,)."""



class Linear:
    """BP's op (:data:`linear`): the plain maps, ``h @ w + b`` and ``fn(h, w) + b``."""

    def __call__(self, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return h @ w + b

    def apply(self, fn: Map, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return fn(h, w) + b

    def layer(self, fn: LayerFn, h: jax.Array, p: Any, plain: Callable[[jax.Array], jax.Array]) -> jax.Array:
        return plain(h)

    def __repr__(self) -> str:
        return "fa_jax.rules.linear"


linear = Linear()  # the op of bp and dfa (and of the lazy baselines' layers)


@jax.custom_vjp
def fa_linear(h: jax.Array, w: jax.Array, b: jax.Array, B: jax.Array) -> jax.Array:
    """h @ w + b whose backward sends ``g @ B.T`` to ``h`` (FA); w and b get their true gradients.

    h: (..., fan_in), w and B: (fan_in, fan_out), b: (fan_out,). B receives a zero cotangent.
    """
    return h @ w + b


def _fa_fwd(h, w, b, B):
    return h @ w + b, (h, B)


def _fa_bwd(res, g):
    h, B = res
    h2 = h.reshape(-1, h.shape[-1])
    g2 = g.reshape(-1, g.shape[-1])
    return g @ B.T, h2.T @ g2, g2.sum(0), jnp.zeros_like(B)


fa_linear.defvjp(_fa_fwd, _fa_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def fa_apply(fn: Map, h: jax.Array, w: jax.Array, B: jax.Array) -> jax.Array:
    """``fn(h, w)`` (bilinear: a conv or transposed conv) whose backward sends ``vjp_h fn(., B)``
    to ``h`` (FA), the true gradient to ``w`` and a zero cotangent to ``B`` (shaped like ``w``)."""
    return fn(h, w)


def _fa_apply_fwd(fn, h, w, B):
    return fn(h, w), (h, w, B)


def _fa_apply_bwd(fn, res, g):
    h, w, B = res
    dh = jax.vjp(lambda h_: fn(h_, B), h)[1](g)[0]
    dw = jax.vjp(lambda w_: fn(h, w_), w)[1](g)[0]
    return dh, dw, jnp.zeros_like(B)


fa_apply.defvjp(_fa_apply_fwd, _fa_apply_bwd)


class FALinear:
    """The FA-family op: forward as BP's, backward sends ``delta`` through ``B`` instead of ``w``.

    Dense: ``op(h, w, b)`` is :func:`fa_linear`; other maps: ``op.apply(fn, h, w, b)`` is
    :func:`fa_apply` plus the bias; a wrapped Flax layer: ``op.layer(fn, h, p, plain)`` is :func:`fa_layer`. ``B``: the layer's fixed feedback (shaped like ``w``), or
    None; ``backward(w, B) -> B_used`` (optional) derives the matrix used from the layer's
    weight (no gradient flows through it); without it the matrix is ``B`` itself (FA).
    """

    def __init__(self, B: jax.Array | None, backward: Backward | None = None):
        self.B = B
        self.backward = backward

    def matrix(self, w: jax.Array) -> jax.Array:
        """The backward matrix of a layer with weight ``w`` (same shape as ``w``)."""
        if self.backward is None:
            if self.B is None:
                raise InputError("FALinear needs a feedback matrix B or a backward(w, B) function")
            return self.B
        return jax.lax.stop_gradient(self.backward(w, self.B))

    def __call__(self, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return fa_linear(h, w, b, self.matrix(w))

    def apply(self, fn: Map, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return fa_apply(fn, h, w, self.matrix(w)) + b

    def layer(self, fn: LayerFn, h: jax.Array, p: Any, plain: Callable[[jax.Array], jax.Array]) -> jax.Array:
        return fa_layer(fn, h, dict(p), self.matrix(p["kernel"]))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def fa_layer(fn: LayerFn, h: jax.Array, p: Any, B: jax.Array) -> jax.Array:
    """``fn(h, p)`` (a layer, affine in ``h``, linear in ``p["kernel"]``) whose backward sends
    ``vjp_h fn(., {**p, "kernel": B})`` to ``h`` (FA), true gradients to ``p`` and zeros to ``B``."""
    return fn(h, p)


def _fa_layer_fwd(fn, h, p, B):
    return fn(h, p), (h, p, B)


def _fa_layer_bwd(fn, res, g):
    h, p, B = res
    dh = jax.vjp(lambda h_: fn(h_, {**p, "kernel": B}), h)[1](g)[0]
    dp = jax.vjp(lambda p_: fn(h, p_), p)[1](g)[0]
    return dh, dp, jnp.zeros_like(B)


fa_layer.defvjp(_fa_layer_fwd, _fa_layer_bwd)


@jax.custom_vjp
def dfa_output(y: jax.Array, hs: Sequence[jax.Array], Bs: Sequence[jax.Array]) -> jax.Array:
    """Identity on ``y`` whose backward sends ``e @ B_l`` to each hidden activation ``hs[l]``.

    y: (..., n_out); hs[l]: (..., *feature_shape_l); Bs[l]: (n_out, prod(feature_shape_l)) (or a
    shared conv kernel, :func:`direct_signals`). Dense feedback is one matmul with ``[B_1 | ... | B_L]``.
    """
    return y


def _dfa_fwd(y, hs, Bs):
    return y, (hs, Bs)


def direct_signals(source: jax.Array, hs: Sequence[jax.Array], Bs: Sequence[jax.Array]) -> list[jax.Array]:
    """``source @ B_l`` for each hidden activation ``hs[l]``, as one matmul with ``[B_1 | ... | B_L]``.

    source: (..., n_out) (DFA: the error e); Bs[l]: (n_out, prod(feature_shape_l)), or a shared
    conv kernel (k, k, n_out, C) for an ``hs[l]`` of shape (..., H, W, C), which receives
    ``conv(tile(source), B_l)`` (:func:`fa_jax.rules.conv_feedback.conv_signal`). Returns one
    array shaped like each ``hs[l]``. The DFA family's output nodes share it.
    """
    if not Bs:
        return []
    out = [None if B.ndim == 2 else conv_signal(source, B, h) for B, h in zip(Bs, hs)]
    dense = [i for i, B in enumerate(Bs) if B.ndim == 2]
    if not dense:
        return out
    Bd = [Bs[i] for i in dense]
    batch = source.shape[:-1]
    signal = source.reshape(-1, source.shape[-1]) @ jnp.concatenate(Bd, axis=1)
    splits = []
    offset = 0
    for B in Bd[:-1]:
        offset += B.shape[1]
        splits.append(offset)
    parts = jnp.split(signal, splits, axis=1)
    for i, p in zip(dense, parts):
        out[i] = p.reshape(batch + hs[i].shape[len(batch):]).astype(hs[i].dtype)
    return out


def _dfa_bwd(res, e):
    hs, Bs = res
    return e, direct_signals(e, hs, Bs), [jnp.zeros_like(B) for B in Bs]


dfa_output.defvjp(_dfa_fwd, _dfa_bwd)
