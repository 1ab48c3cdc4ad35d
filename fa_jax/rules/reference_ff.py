"""From-scratch numpy reference for Forward-Forward (:mod:`fa_jax.rules.forward_forward`): the math, by hand.

An MLP ``params`` (one ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` per layer, the first with
``"label_w"`` (K, h_1) for ``label="concat"``), hidden layers l = 1..L, the last layer the readout.
A batch X (B, n_in) carries a label one-hot ``Y`` (B, K):

    input           concat: z_1 = X W_1 + Y label_w + b_1;   overlay: X[:, :K] = Y, z_1 = X W_1 + b_1
    hidden l > 1    a_{l-1} = r(h_{l-1}),  z_l = a_{l-1} W_l + b_l,  with r(h) = h / sqrt(mean_j h_j^2 + eps)
    activity        h_l = f(z_l);   goodness G_l = mean_j h_{l,j}^2  (B,)
    layer loss      loss_l = mean_b [softplus(theta - G_l^pos) + softplus(G_l^neg - theta)]

Each layer's gradient is taken through its own loss only (its input ``a_{l-1}`` is a constant):

    dloss_l/dG^pos = -sigmoid(theta - G^pos) / B,    dloss_l/dG^neg = sigmoid(G^neg - theta) / B
    delta_l = dloss_l/dG (per example) * 2 h_l / n_l * f'(z_l)                   (B, n_l), pos and neg
    dW_l = a_{l-1}^T delta_l,   db_l = sum_b delta_l,   dlabel_w = Y^T delta_1   (summed over pos and neg)

The readout reads ``a_L = r(h_L)`` of a pass with the neutral label (every entry 1/K):
``logits = a_L W_out + b_out``, softmax cross-entropy with integer labels; ``e = (softmax - onehot) / B``,
``dW_out = a_L^T e``, ``db_out = sum_b e``. The goodness prediction scores class c by the summed
goodness of the hidden layers but the first (the one layer when L = 1) with label c.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

Params = Sequence[Mapping[str, ArrayLike]]
EPS = 1e-8

_ACT = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
}


def _np(params: Params) -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in params]


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def unit_rms(h: np.ndarray, eps: float = EPS) -> np.ndarray:
    """``h / sqrt(mean_j h_j^2 + eps)`` per row."""
    return h / np.sqrt((h * h).mean(-1, keepdims=True) + eps)


def onehot(c: ArrayLike, k: int) -> np.ndarray:
    """(B, K) float64 one-hot of the class indices ``c``."""
    return np.eye(k)[np.asarray(c)]


def hidden(params: Params, x: ArrayLike, y1h: np.ndarray, label: str = "concat",
           activation: str = "relu") -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``(inputs [a_0..a_{L-1}], pre-activations [z_1..z_L], activities [h_1..h_L])`` for labels ``y1h`` (B, K)."""
    f, _ = _ACT[activation]
    ps, k = _np(params), y1h.shape[1]
    a = np.array(x, np.float64)
    if label == "overlay":
        a[:, :k] = y1h
    ins, zs, hs = [], [], []
    for i, p in enumerate(ps[:-1]):
        if i > 0:
            a = unit_rms(hs[-1])
        z = a @ p["w"] + p["b"] + (y1h @ p["label_w"] if i == 0 and label == "concat" else 0.0)
        ins.append(a)
        zs.append(z)
        hs.append(f(z))
    return ins, zs, hs


def goodness(h: np.ndarray) -> np.ndarray:
    """``mean_j h_j^2`` (B,)."""
    return (h * h).mean(-1)


def layer_losses(params: Params, x: ArrayLike, c_pos: ArrayLike, c_neg: ArrayLike, k: int, theta: float,
                 label: str = "concat", activation: str = "relu") -> list[float]:
    """``[loss_1..loss_L]`` for true labels ``c_pos`` and wrong labels ``c_neg`` (B,) (module doc)."""
    hp = hidden(params, x, onehot(c_pos, k), label, activation)[2]
    hn = hidden(params, x, onehot(c_neg, k), label, activation)[2]
    return [float(np.mean(_softplus(theta - goodness(p)) + _softplus(goodness(n) - theta))) for p, n in zip(hp, hn)]


def layer_grads(params: Params, x: ArrayLike, c_pos: ArrayLike, c_neg: ArrayLike, k: int, theta: float,
                label: str = "concat", activation: str = "relu") -> list[dict[str, np.ndarray]]:
    """Each hidden layer's gradient of its own loss: ``{"w", "b"}`` (+ ``"label_w"`` for layer 1 with
    ``label="concat"``), the module doc's backward written out."""
    _, df = _ACT[activation]
    ps = _np(params)
    out = [{"w": np.zeros_like(p["w"]), "b": np.zeros_like(p["b"])} for p in ps[:-1]]
    if label == "concat":
        out[0]["label_w"] = np.zeros_like(ps[0]["label_w"])
    for c, sign in ((c_pos, -1.0), (c_neg, 1.0)):
        y1h = onehot(c, k)
        ins, zs, hs = hidden(params, x, y1h, label, activation)
        for i, (a, z, h) in enumerate(zip(ins, zs, hs)):
            n_b, n_l = h.shape
            g = goodness(h)
            dg = (-_sigmoid(theta - g) if sign < 0 else _sigmoid(g - theta)) / n_b  # dloss/dG per example
            delta = dg[:, None] * 2.0 * h / n_l * df(z)
            out[i]["w"] += a.T @ delta
            out[i]["b"] += delta.sum(0)
            if i == 0 and label == "concat":
                out[0]["label_w"] += y1h.T @ delta
    return out


def readout_logits(params: Params, x: ArrayLike, k: int, label: str = "concat", activation: str = "relu") -> np.ndarray:
    """The readout's logits (B, n_out) on ``r(h_L)`` of the neutral-label pass."""
    ps, n = _np(params), np.asarray(x).shape[0]
    h = hidden(params, x, np.full((n, k), 1.0 / k), label, activation)[2][-1]
    return unit_rms(h) @ ps[-1]["w"] + ps[-1]["b"]


def readout_loss_and_grads(params: Params, x: ArrayLike, c: ArrayLike, k: int, label: str = "concat",
                           activation: str = "relu") -> tuple[float, dict[str, np.ndarray]]:
    """Softmax cross-entropy of the readout for integer labels ``c`` and its ``{"w", "b"}`` gradient."""
    ps, n = _np(params), np.asarray(x).shape[0]
    a = unit_rms(hidden(params, x, np.full((n, k), 1.0 / k), label, activation)[2][-1])
    z = a @ ps[-1]["w"] + ps[-1]["b"]
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    t = onehot(c, z.shape[1])
    loss = float(-(t * np.log(p)).sum(-1).mean())
    e = (p - t) / n
    return loss, {"w": a.T @ e, "b": e.sum(0)}


def goodness_scores(params: Params, x: ArrayLike, k: int, label: str = "concat",
                    activation: str = "relu") -> np.ndarray:
    """(B, K): class c's summed goodness over the hidden layers but the first (the one layer when L = 1)."""
    n = np.asarray(x).shape[0]
    cols = []
    for c in range(k):
        hs = hidden(params, x, onehot(np.full(n, c), k), label, activation)[2]
        cols.append(sum(goodness(h) for h in (hs[1:] if len(hs) > 1 else hs)))
    return np.stack(cols, 1)
