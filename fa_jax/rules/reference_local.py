"""From-scratch numpy reference for the local-loss rule (:mod:`fa_jax.rules.local`) on an MLP: the
gradients of every block's own loss, written out by hand (no autodiff).

Network: ``a_l = h_{l-1} W_l + b_l``, ``h_l = f(a_l)`` for hidden layers l = 1..L (``h_0 = X``, N
examples), logits ``z = h_L W_out + b_out``. Each block's input is detached, so block l only sees
its local loss ``L_l(h_l)`` and the output layer only the task loss ``L(z)``; with
``G_l = dL_l/dh_l`` (N, n_l):

    delta_l = G_l * f'(a_l),   dW_l = h_{l-1}^T delta_l,   db_l = sum_n delta_l

Task losses (batch means): softmax cross-entropy with integer labels (``e = (softmax(z) - Y) / N``,
Y one-hot) or bce with ±1 labels (``e = (sigmoid(z) - (y + 1) / 2) / N``); ``dW_out = h_L^T e``,
``db_out = sum_n e``.

pred: the task loss of a head ``q_l = h_l V_l + c_l``; with its error ``e_l`` as above,
``G_l = e_l V_l^T``, ``dV_l = h_l^T e_l``, ``dc_l = sum_n e_l``.

sim: ``L = sum_ij (S_ij - R_ij)^2 / N^2`` with ``S = U U^T``, ``U_i = c_i / r_i``,
``r_i = sqrt(|c_i|^2 + eps)``, ``c_i = h_i - mean(h_i)`` (row i centred over its features), R the same
of the targets T (one-hot; ±1 as 2-class one-hot). Backward:

    dS = 2 (S - R) / N^2                       (symmetric)
    dU = (dS + dS^T) U = 2 dS U
    dc_i = (dU_i - U_i (U_i . dU_i)) / r_i     (d(c / r)/dc = I / r - c c^T / r^3)
    G_i = dc_i - mean(dc_i)                    (the centring's backward)

predsim: ``(1 - beta) pred + beta sim``: G, dV, dc the same mix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fa_jax.rules.reference import _ACT, forward

Params = Sequence[Mapping]  # one {"w", "b"} per layer; hidden layers' "head": {"w": (n_l, n_out), "b": (n_out,)}
EPS = 1e-8


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def targets(y: ArrayLike, n_out: int) -> np.ndarray:
    """(N, K) one-hot targets: of integer classes, or of ±1 labels (n_out == 1) as 2 classes."""
    y = np.asarray(y)
    return np.eye(2)[(y > 0).astype(int)] if n_out == 1 else np.eye(n_out)[y.astype(int)]


def loss_and_error(z: np.ndarray, y: ArrayLike) -> tuple[float, np.ndarray]:
    """The task loss of logits z (N, K) and its error ``e = dL/dz`` (N, K): bce for K = 1 (±1 labels),
    softmax cross-entropy otherwise (integer labels)."""
    n, k = z.shape
    if k == 1:
        t = (np.asarray(y, np.float64).reshape(-1, 1) + 1) / 2
        s = 1 / (1 + np.exp(-z))
        return float(-np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))), (s - t) / n
    t = targets(y, k)
    p = _softmax(z)
    return float(-np.mean(np.sum(t * np.log(p), axis=1))), (p - t) / n


def similarity(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(S, U, r)``: the centred cosine similarity S (N, N) of rows x (N, D), U = c / r, r (N, 1)."""
    c = x - x.mean(axis=1, keepdims=True)
    r = np.sqrt((c * c).sum(axis=1, keepdims=True) + EPS)
    u = c / r
    return u @ u.T, u, r


def sim_loss_grad(h: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """``(L_sim, dL_sim/dh)`` of a block output h (N, D) and targets t (N, K) (module doc)."""
    n = h.shape[0]
    s, u, r = similarity(h)
    rt = similarity(t)[0]
    ds = 2 * (s - rt) / n**2
    du = 2 * ds @ u
    dc = (du - u * (u * du).sum(axis=1, keepdims=True)) / r
    return float(np.mean((s - rt) ** 2)), dc - dc.mean(axis=1, keepdims=True)


def local_grads(params: Params, x: ArrayLike, y: ArrayLike, loss: str = "predsim", beta: float = 0.99,
                activation: str = "relu") -> tuple[list[dict], list[float]]:
    """``(grads, local_losses)``: the local rule's update of an MLP and each hidden block's L_l.

    Args:
        params: one dict per layer (module doc); hidden layers carry ``"head"`` for pred and predsim.
        x: (N, n_in) inputs.
        y: (N,) integer classes (softmax cross-entropy) or ±1 labels (bce, one output).
        loss: ``"pred"``, ``"sim"`` or ``"predsim"``; beta weighs predsim's sim part.
        activation: the hidden layers' f (as :func:`fa_jax.rules.reference.forward`).

    Returns:
        grads: ``[{"w", "b"(, "head": {"w", "b"})}]`` per layer, float64; local_losses: [L_1..L_L].
    """
    _, df = _ACT[activation]
    params = [{k: (dict((kk, np.asarray(vv, np.float64)) for kk, vv in v.items()) if k == "head"
                   else np.asarray(v, np.float64)) for k, v in p.items()} for p in params]
    as_, hs, z = forward(params, np.asarray(x, np.float64), activation)
    w_pred, w_sim = {"pred": (1.0, 0.0), "sim": (0.0, 1.0), "predsim": (1 - beta, beta)}[loss]
    t = targets(y, z.shape[1])
    grads, losses = [], []
    for i, p in enumerate(params[:-1]):
        h = hs[i + 1]
        g, total, gl = np.zeros_like(h), 0.0, {}
        if w_pred:
            v, c = p["head"]["w"], p["head"]["b"]
            lp, e = loss_and_error(h @ v + c, y)
            g += w_pred * e @ v.T
            gl["head"] = {"w": w_pred * h.T @ e, "b": w_pred * e.sum(0)}
            total += w_pred * lp
        if w_sim:
            ls, gs = sim_loss_grad(h, t)
            g += w_sim * gs
            total += w_sim * ls
        delta = g * df(as_[i])
        grads.append({"w": hs[i].T @ delta, "b": delta.sum(0), **gl})
        losses.append(total)
    e = loss_and_error(z, y)[1]
    grads.append({"w": hs[-1].T @ e, "b": e.sum(0)})
    return grads, losses
