"""Radial-basis-function networks (the introductory deep-learning lectures; Schwenker, Kestler & Palm 2001).

``f(x) = phi(x) @ w + b`` with Gaussian kernels ``phi_k(x) = exp(-|x - mu_k|^2 / (2 sigma_k^2))``.
params: ``{"mu": (K, d), "log_sigma": (K,), "w": (K, n_out), "b": (n_out,)}``.

Training in phases:
1. place the centres (:func:`place_centres`: ``uniform`` grid, ``random`` training points,
   ``kmeans++`` seeding) and widths (:func:`init_rbf`);
2. fit the output weights with centres and widths fixed: closed-form (ridge) least squares
   (:func:`fit_output_lstsq`) or gradient descent (:func:`fit`, ``phase="output"``);
3. optionally fine-tune everything by gradient (:func:`fit`, ``phase="all"``).
Regression uses the squared error and real targets; classification one-hot targets
(least squares) or softmax cross-entropy (gradient).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import DTypeLike

from fa_jax import checks
from fa_jax import losses as losses_lib
from fa_jax.errors import InputError
from fa_jax.optim import regularize
from fa_jax.optim import zoo as optim
from fa_jax.registry import lookup


def _grid(key, x, k):
    del key
    d = x.shape[1]
    m = round(k ** (1 / d))
    if m ** d != k:
        raise InputError(f"uniform centres need k = m^d grid points (d={d}), got k={k}")
    axes = [jnp.linspace(lo, hi, m) for lo, hi in zip(x.min(0), x.max(0))]
    return jnp.stack([g.reshape(-1) for g in jnp.meshgrid(*axes, indexing="ij")], axis=1)


def _random(key, x, k):
    return x[jax.random.choice(key, x.shape[0], (k,), replace=False)]


def _kmeanspp(key, x, k):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre is a data point drawn
    with probability proportional to its squared distance to the nearest chosen centre."""
    n = x.shape[0]
    k0, key = jax.random.split(key)
    first = jax.random.randint(k0, (), 0, n, dtype=jnp.int32)
    idx = jnp.zeros(k, jnp.int32).at[0].set(first)
    d2 = jnp.sum((x - x[first]) ** 2, axis=1)

    def body(i, carry):
        idx, d2 = carry
        p = jnp.where(d2.sum() > 0, d2 / d2.sum(), jnp.ones(n) / n)
        j = jax.random.choice(jax.random.fold_in(key, i), n, p=p)
        return idx.at[i].set(j.astype(jnp.int32)), jnp.minimum(d2, jnp.sum((x - x[j]) ** 2, axis=1))

    idx, _ = jax.lax.fori_loop(1, k, body, (idx, d2))
    return x[idx]


PLACEMENTS = {"uniform": _grid, "random": _random, "kmeans++": _kmeanspp}


def place_centres(method: str, key: jax.Array, x: jax.Array | np.ndarray, k: int) -> jax.Array:
    """(k, d) centres from training inputs x (n, d): ``uniform`` grid over x's bounding box
    (k = m^d), ``random`` distinct training points, or ``kmeans++`` seeding (data points)."""
    place = lookup(PLACEMENTS, method, "centre placement")
    checks.integer("number of centres", k, 1, x.shape[0], hi_text=f"n={x.shape[0]}")
    return place(key, jnp.asarray(x), k)


def default_width(centres: jax.Array) -> float:
    """Haykin's heuristic sigma = d_max / sqrt(2K), d_max the largest distance between centres."""
    k = centres.shape[0]
    dmax = jnp.sqrt(jnp.max(jnp.sum((centres[:, None] - centres[None]) ** 2, -1)))
    return float(dmax / math.sqrt(2 * k)) if k > 1 else 1.0


def init_rbf(centres: jax.Array, n_out: int, sigma: float | None = None,
             dtype: DTypeLike = jnp.float32) -> dict[str, jax.Array]:
    """params with the given centres (K, d), one shared width ``sigma`` (default
    :func:`default_width`), zero output weights (K, n_out) and bias (n_out,)."""
    sigma = default_width(centres) if sigma is None else sigma
    checks.positive_number("RBF width sigma", sigma, finite=False)
    k = centres.shape[0]
    return {"mu": jnp.asarray(centres, dtype), "log_sigma": jnp.full((k,), math.log(sigma), dtype),
            "w": jnp.zeros((k, n_out), dtype), "b": jnp.zeros((n_out,), dtype)}


def features(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """phi(x): (n, K) Gaussian kernel activations of inputs x (n, d)."""
    d2 = jnp.sum((x[:, None, :] - params["mu"][None]) ** 2, -1)
    return jnp.exp(-d2 / (2 * jnp.exp(2 * params["log_sigma"])))


def apply(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """Outputs (n, n_out) = phi(x) @ w + b."""
    return features(params, x) @ params["w"] + params["b"]


def targets(y: jax.Array, n_out: int) -> jax.Array:
    """Regression targets (n,) -> (n, 1); integer class labels -> one-hot (n, n_out)."""
    if n_out > 1 and jnp.issubdtype(y.dtype, jnp.integer):
        return jax.nn.one_hot(y, n_out)
    return y.reshape(y.shape[0], -1).astype(jnp.float32 if y.dtype != jnp.float64 else y.dtype)


def fit_output_lstsq(params: dict[str, jax.Array], x: jax.Array, y: jax.Array,
                     l2: float = 0.0) -> dict[str, jax.Array]:
    """Phase 2 in closed form: ``w, b = argmin |phi w + b - t|^2 + l2 |w|^2`` (bias unpenalized).

    Centring phi and t removes b; ``w = (Phi_c^T Phi_c + l2 I)^+ Phi_c^T t_c`` (pseudo-inverse
    via ``lstsq`` when ``l2 = 0``), ``b = mean(t) - mean(phi) w``.
    """
    checks.number_in("l2", l2, 0, math.inf, hi_open=False, what=">= 0")
    phi = features(params, x)
    t = targets(y, params["w"].shape[1]).astype(phi.dtype)
    pm, tm = phi.mean(0), t.mean(0)
    pc, tc = phi - pm, t - tm
    if l2 > 0:
        w = jnp.linalg.solve(pc.T @ pc + l2 * jnp.eye(pc.shape[1], dtype=pc.dtype), pc.T @ tc)
    else:
        w = jnp.linalg.lstsq(pc, tc)[0]
    return {**params, "w": w, "b": tm - pm @ w}


PHASES = ("output", "all")


def fit(params: dict[str, jax.Array], x: jax.Array, y: jax.Array, *, phase: str = "output", loss: str = "mse",
        steps: int = 1000, optimizer: str = "adam", lr: float = 1e-2,
        **tools) -> tuple[dict[str, jax.Array], jax.Array]:
    """Full-batch gradient training (``lax.scan`` over ``steps``); returns ``(params, losses (steps,))``.

    Args:
        params: the RBF params (module doc), e.g. from :func:`init_rbf`.
        x: (n, d) training inputs.
        y: (n,) real targets (regression) or integer class labels.
        phase: ``"output"`` (default) trains w, b only (centres and widths fixed: phase 2),
            ``"all"`` trains everything (phase 3).
        loss: ``"mse"`` (default) on real targets (regression, y (n,)) or any ``fa_jax.losses``
            name for labels.
        steps: gradient steps (default 1000).
        optimizer: a name of :func:`fa_jax.optimizer` (default ``"adam"``).
        lr: its learning rate (default 1e-2).
        **tools: :mod:`fa_jax.optim.regularize` keys (``l1``, ``l2``, ...).

    Returns:
        ``(params, losses)``: the trained params and the (steps,) loss before each step.
    """
    checks.choice("phase", phase, PHASES)
    checks.positive_int("steps", steps)
    regularize.check_tools(**tools)
    loss_fn = _regression_loss if loss == "mse" and not jnp.issubdtype(y.dtype, jnp.integer) else losses_lib.get(loss)
    tx = optim.optimizer(optimizer, lr, **tools)
    if phase == "output":
        tx = optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()},
                                   {"mu": "freeze", "log_sigma": "freeze", "w": "train", "b": "train"})

    def objective(p):
        return loss_fn(apply(p, x), y)

    def step(carry, _):
        p, s = carry
        value, g = jax.value_and_grad(objective)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), value

    (params, _), values = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, length=steps))(params)
    return params, values


def _regression_loss(out, y):
    """Mean squared error: mean_i |f(x_i) - y_i|^2 for real targets y (n,) or (n, n_out)."""
    return jnp.mean(jnp.sum((out - y.reshape(out.shape)) ** 2, -1))
