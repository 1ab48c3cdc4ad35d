"""From-scratch numpy reference for the perturbation rules (no autodiff): the math, by hand.

Network (as ``fj.mlp``): ``z_l = h_{l-1} W_l + b_l`` for l = 1..L (``h_0 = X``), ``h_l = f(z_l)``
for the hidden layers, logits ``z_L``. Loss: softmax cross-entropy, per example
``l_i = logsumexp(z_L,i) - z_L,i[y_i]``, batch loss ``L = mean_i l_i`` over the B examples.
BP's deltas ``delta_l = dL/dz_l`` (B, n_l):

    delta_L = (softmax(z_L) - onehot(y)) / B,      delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l)

Activity-perturbed forward gradient (Ren et al. 2023), directions ``u_jl`` (n, B, n_l):

    d_ji = B sum_l delta_l,i . u_jl,i   (= dl_i/dz . u_j,i),    g_z_l = mean_j d_j u_jl / B,
    dW_l = h_{l-1}^T g_z_l,   db_l = sum_i g_z_l,i                          (:func:`activity_update`)

Node perturbation (Werfel et al. 2005) with ``xi_l`` (B, n_l): a second pass with ``z_l + sigma
xi_l`` at every layer (the noise propagates), per-example losses ``l_i^noisy``, and

    d_i = (l_i^noisy - l_i) / sigma,   g_z_l = d xi_l / B,   dW_l = h_{l-1}^T g_z_l   (h: the clean pass)
                                                                            (:func:`node_pert_update`)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

Params = Sequence[Mapping[str, ArrayLike]]  # one {"w": (fan_in, fan_out), "b": (fan_out,)} per layer
Grads = list[dict[str, np.ndarray]]

_ACT = {
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(a.dtype)),
    "tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
}


def forward(params: Params, x: ArrayLike, activation: str = "relu",
            shifts: Sequence[np.ndarray] | None = None) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``(zs, hs, logits)``: every map's output ``z_l`` (B, n_l) before its shift, the layer inputs
    ``hs = [X, h_1, ..., h_{L-1}]`` and the logits (shifted); ``shifts[l]`` (B, n_l) is added to ``z_l``."""
    f, _ = _ACT[activation]
    hs, zs = [np.asarray(x, np.float64)], []
    for i, p in enumerate(params):
        zs.append(hs[-1] @ np.asarray(p["w"], np.float64) + np.asarray(p["b"], np.float64))
        a = zs[-1] if shifts is None else zs[-1] + shifts[i]
        if i == len(params) - 1:
            return zs, hs, a
        hs.append(f(a))


def example_losses(logits: np.ndarray, y: ArrayLike) -> np.ndarray:
    """Per-example softmax cross-entropy (B,): ``logsumexp(z_i) - z_i[y_i]``."""
    m = logits.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[:, 0]
    return lse - logits[np.arange(len(logits)), np.asarray(y)]


def deltas(params: Params, x: ArrayLike, y: ArrayLike, activation: str = "relu") -> list[np.ndarray]:
    """BP's ``delta_l = dL/dz_l`` (B, n_l) for every layer, the logits' last (module doc)."""
    _, df = _ACT[activation]
    zs, _, logits = forward(params, x, activation)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = [(p - np.eye(logits.shape[-1])[np.asarray(y)]) / len(logits)]
    for i in range(len(params) - 2, -1, -1):
        out.insert(0, (out[0] @ np.asarray(params[i + 1]["w"], np.float64).T) * df(zs[i]))
    return out


def _weights(hs: Sequence[np.ndarray], gzs: Sequence[np.ndarray]) -> Grads:
    return [{"w": h.T @ g, "b": g.sum(0)} for h, g in zip(hs, gzs)]


def activity_update(params: Params, x: ArrayLike, y: ArrayLike, us: Sequence[ArrayLike],
                    activation: str = "relu") -> tuple[Grads, np.ndarray]:
    """``(updates, d)``: fg(kind=activity)'s update for directions ``us[l]`` (n, B, n_l) and the
    per-example directional derivatives ``d`` (n, B) (module doc)."""
    us = [np.asarray(u, np.float64) for u in us]
    ds = deltas(params, x, y, activation)
    b = len(ds[0])
    d = b * sum(np.einsum("ik,jik->ji", dl, u) for dl, u in zip(ds, us))
    gzs = [np.mean(d[:, :, None] * u, axis=0) / b for u in us]
    _, hs, _ = forward(params, x, activation)
    return _weights(hs, gzs), d


def node_pert_update(params: Params, x: ArrayLike, y: ArrayLike, xis: Sequence[ArrayLike], sigma: float,
                     activation: str = "relu") -> tuple[Grads, np.ndarray]:
    """``(updates, d)``: node_pert's update for noise ``xis[l]`` (B, n_l) at scale ``sigma`` and the
    loss differences over sigma ``d`` (B,) (module doc)."""
    xis = [np.asarray(xi, np.float64) for xi in xis]
    _, hs, logits = forward(params, x, activation)
    noisy = forward(params, x, activation, [sigma * xi for xi in xis])[2]
    d = (example_losses(noisy, y) - example_losses(logits, y)) / sigma
    gzs = [d[:, None] * xi / len(d) for xi in xis]
    return _weights(hs, gzs), d
