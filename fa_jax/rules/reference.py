"""From-scratch numpy reference for BP, FA-family and DFA gradients (no autodiff): the math, by hand.

Network: ``a_l = h_{l-1} W_l + b_l``, ``h_l = f(a_l)`` for hidden layers l = 1..L
(``h_0 = X``), logits ``z = h_L W_out + b_out``, prediction ``y_hat = sigmoid(z)``.
Loss: binary cross-entropy averaged over the N examples of the batch, with targets
``y in {0, 1}``. For sigmoid + BCE the output error is (the thesis chapter on BP vs DFA vs
lazy methods on parity, appendix):

    e = dL/dz = (y_hat - y) / N                     (N, 1)
    dW_out = h_L^T e,      db_out = sum_n e          (the output layer: same for BP and DFA)

BP carries the error backwards through the transposed weights:

    delta_L = (e W_out^T) * f'(a_L),   delta_l = (delta_{l+1} W_{l+1}^T) * f'(a_l)

DFA (Nøkland 2016) sends the output error straight to every hidden layer through a fixed
random ``B_l`` of shape (n_out, h_l):

    delta_l = (e B_l) * f'(a_l)

and in both cases ``dW_l = h_{l-1}^T delta_l``, ``db_l = sum_n delta_l``. For one hidden
layer, ``B_1 = W_out^T`` makes DFA equal to BP: that is the thesis chapter's
``dBCE/dW_1 = X^T (y_hat - y) B * f'(a_1)`` with ``B = W_2^T``.

The FA family replaces ``W_{l+1}^T`` by the transposed backward matrix of layer l+1:

    delta_l = (delta_{l+1} B_{l+1}^T) * f'(a_l)

with ``B = W`` (BP), a fixed random ``B`` (FA, Kolen-Pollack and weight mirror at their
current ``B``), ``B = sign(W) / sqrt(fan_in)`` (uSF) or ``B = |M| * sign(W)`` (frSF, brSF)
(:func:`usf_matrices`, :func:`rsf_matrices`).

PEPITA (Dellaferrera & Kreiman 2022, Algorithm 1 and the authors' code) has no backward pass:
with ``e = sigma(z) - t`` (softmax and one-hot t, or sigmoid and t in {0, 1}) from the standard
pass, a second pass on ``X_mod = X + e F`` (F: (n_out, n_in)) gives ``h_l^mod`` and ``e_mod``, and

    delta_l = (h_l - h_l^mod) / N,   dW_l = (h_{l-1}^mod)^T delta_l   (h_0^mod = X_mod),
    dW_out = (h_L^mod)^T e_mod / N,  the biases the sums of the same deltas (:func:`pepita_updates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import jax

Params = Sequence[Mapping[str, ArrayLike]]  # one {"w": (fan_in, fan_out), "b": (fan_out,)} per layer
Grads = list[dict[str, np.ndarray]]  # the same structure, float64

_ACT = {
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(a.dtype)),
    "tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
    "sigmoid": (lambda a: 1 / (1 + np.exp(-a)), lambda a: np.exp(-a) / (1 + np.exp(-a)) ** 2),
    "identity": (lambda a: a, lambda a: np.ones_like(a)),
}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def forward(params: Params, x: np.ndarray | jax.Array,
            activation: str = "relu") -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Pre-activations [a_1..a_L], activations [h_0=X, h_1..h_L] and logits z (N, n_out)."""
    f, _ = _ACT[activation]
    hs, as_ = [np.asarray(x, np.float64)], []
    for p in params[:-1]:
        as_.append(hs[-1] @ p["w"] + p["b"])
        hs.append(f(as_[-1]))
    z = hs[-1] @ params[-1]["w"] + params[-1]["b"]
    return as_, hs, z


def bce_loss(params: Params, x: np.ndarray | jax.Array, y01: ArrayLike, activation: str = "relu") -> float:
    """Mean binary cross-entropy, y01: (N,) targets in {0, 1}."""
    _, _, z = forward(params, x, activation)
    p = _sigmoid(z[:, 0])
    return float(-np.mean(y01 * np.log(p) + (1 - y01) * np.log(1 - p)))


def _grads(params, x, y01, activation, signal):
    _, df = _ACT[activation]
    params = [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in params]
    as_, hs, z = forward(params, x, activation)
    n = x.shape[0]
    e = (_sigmoid(z) - np.asarray(y01, np.float64).reshape(-1, 1)) / n
    grads = [None] * len(params)
    grads[-1] = {"w": hs[-1].T @ e, "b": e.sum(0)}
    delta_above = e
    for l in range(len(params) - 2, -1, -1):
        delta = signal(l, e, delta_above, params) * df(as_[l])
        grads[l] = {"w": hs[l].T @ delta, "b": delta.sum(0)}
        delta_above = delta
    return grads


def bp_grads(params: Params, x: np.ndarray | jax.Array, y01: ArrayLike, activation: str = "relu") -> Grads:
    """BP gradients [{"w": dW_l, "b": db_l}] by the chain rule written out by hand."""
    return _grads(params, x, y01, activation, lambda l, e, d, p: d @ p[l + 1]["w"].T)


def dfa_grads(params: Params, x: np.ndarray | jax.Array, y01: ArrayLike, feedback: Sequence[ArrayLike],
              activation: str = "relu") -> Grads:
    """DFA gradients [{"w": dW_l, "b": db_l}] by the formulas of the module doc, in float64.

    Args:
        params: one dict per layer, ``{"w": (fan_in, fan_out), "b": (fan_out,)}``; the last is the output layer.
        x: (N, n_in) inputs.
        y01: (N,) targets in {0, 1}.
        feedback: feedback[l]: (n_out, h_{l+1}) for hidden layer l+1.
        activation: the hidden layers' f, ``"relu"`` (default), ``"tanh"``, ``"sigmoid"`` or ``"identity"``.
    """
    fb = [np.asarray(B, np.float64) for B in feedback]
    return _grads(params, x, y01, activation, lambda l, e, d, p: e @ fb[l])


def fa_grads(params: Params, x: np.ndarray | jax.Array, y01: ArrayLike, backward: Sequence[ArrayLike],
             activation: str = "relu") -> Grads:
    """FA-family gradients: ``delta_l = (delta_{l+1} B_{l+1}^T) * f'(a_l)`` (module doc).

    backward: one matrix per layer shaped like its ``W`` (backward[0] is never used).
    """
    bs = [np.asarray(B, np.float64) for B in backward]
    return _grads(params, x, y01, activation, lambda l, e, d, p: d @ bs[l + 1].T)


def usf_matrices(params: Params) -> list[np.ndarray]:
    """uSF's ``B_l = sign(W_l) / sqrt(fan_in_l)`` for each layer (Liao et al. 2016)."""
    return [np.sign(np.asarray(p["w"], np.float64)) / np.sqrt(np.shape(p["w"])[0]) for p in params]


def rsf_matrices(params: Params, magnitudes: Sequence[ArrayLike]) -> list[np.ndarray]:
    """frSF / brSF's ``B_l = |M_l| * sign(W_l)`` for each layer (Moskovitz et al. 2018)."""
    return [np.abs(np.asarray(M, np.float64)) * np.sign(np.asarray(p["w"], np.float64))
            for p, M in zip(params, magnitudes)]


def sdfa_grads(params: Params, x: np.ndarray | jax.Array, y01: ArrayLike, feedback: Sequence[ArrayLike],
               activation: str = "relu") -> Grads:
    """sign-DFA: ``delta_l = (sign(e) B_l) * f'(a_l)``; the output layer as BP (``h_L^T e``)."""
    fb = [np.asarray(B, np.float64) for B in feedback]
    return _grads(params, x, y01, activation, lambda l, e, d, p: np.sign(e) @ fb[l])


def drtp_grads(params: Params, x: np.ndarray | jax.Array, y01: ArrayLike, feedback: Sequence[ArrayLike],
               activation: str = "relu") -> Grads:
    """DRTP for a binary output: ``delta_l = (y_star B_l) * f'(a_l)``, ``y_star = 2 y - 1`` the ±1 label."""
    fb = [np.asarray(B, np.float64) for B in feedback]
    t = (2.0 * np.asarray(y01, np.float64) - 1.0).reshape(-1, 1)
    return _grads(params, x, y01, activation, lambda l, e, d, p: t @ fb[l])


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


def pepita_updates(params: Params, x: np.ndarray | jax.Array, targets: ArrayLike, F: ArrayLike,
                   activation: str = "relu", last: str = "modulated") -> Grads:
    """PEPITA's updates [{"w": dW_l, "b": db_l}] by the formulas of the module doc, in float64.

    Args:
        params: one dict per layer, ``{"w": (fan_in, fan_out), "b": (fan_out,)}``; the last is the output layer.
        x: (N, n_in) inputs.
        targets: (N, n_out): one-hot classes (softmax output) or, for n_out = 1, targets in {0, 1} (sigmoid).
        F: (n_out, n_in), the fixed projection of the error onto the input.
        activation: the hidden layers' f (as :func:`dfa_grads`).
        last: ``"modulated"`` (the output layer uses e_mod, the authors' code) or ``"standard"`` (e).
    """
    params = [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in params]
    t = np.asarray(targets, np.float64)
    sigma = _sigmoid if t.shape[1] == 1 else _softmax
    n = x.shape[0]
    _, hs, z = forward(params, x, activation)
    e = sigma(z) - t
    x_mod = np.asarray(x, np.float64) + e @ np.asarray(F, np.float64)
    _, hs_mod, z_mod = forward(params, x_mod, activation)  # hs_mod[0] is x_mod
    e_out = sigma(z_mod) - t if last == "modulated" else e
    deltas = [(h - hm) / n for h, hm in zip(hs[1:], hs_mod[1:])] + [e_out / n]
    return [{"w": inp.T @ d, "b": d.sum(0)} for inp, d in zip(hs_mod, deltas)]
