"""Weight mirror: FA whose ``B_l`` learns ``W_l`` from noise passed through the layer.

``wm(eta=0.05, d=0.05, sigma=1.0, n=64)`` (the spec ``"wm(eta=...; d=...; ...)"``; plain ``"wm"`` =
the defaults). Each layer's input receives ``delta @ B_l.T`` (FA); after the optimizer, in
the same compiled step (the rule's ``update_feedback`` hook), every layer gets a mirror
update on its own fresh noise batch ``xi ~ N(0, sigma^2)`` of shape (n, fan_in_l):

    B_l <- (1 - d) B_l + eta * xi^T (xi W_l) / n

(Akrout et al. 2019, eq. 7, with the decay they use to keep ``B`` bounded). Since
``E[xi^T xi / n] = sigma^2 I``, ``B_l`` relaxes towards ``(eta sigma^2 / d) W_l``: with the
defaults, ``W_l`` itself, with a time constant of ``1 / d`` = 20 steps. ``W_l`` is the layer's
weight after this step's update; conv kernels are mirrored as their (receptive field * c_in,
c_out) matrices.

Defaults are ours (they align ``B`` within a few hundred steps on the small tasks here);
Akrout et al.'s FCNN code mirrors once per training step with a batch of the training batch
size (128), ``eta = 0.01`` on a *sum* over that batch and uniform noise of amplitude 0.1
(std 0.029), i.e. ``eta sigma^2`` about 1e-3 per step in this normalisation, and rescales
``B`` instead of decaying it. Options: ``eta`` > 0, ``d`` in [0, 1), ``sigma`` > 0, ``n`` a
positive int.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import optax

from fa_jax import checks
from fa_jax.rules.core import fa_rule, register_factory
from fa_jax.rules.kernels import kernels_like

if TYPE_CHECKING:
    from fa_jax.rules.rule import Rule, UpdateFeedback


def mirror_step(key: jax.Array, B: jax.Array, w: jax.Array, eta: float, d: float, sigma: float, n: int) -> jax.Array:
    """One mirror update of ``B`` (shaped like ``w``) on a fresh noise batch (module doc)."""
    w2 = w.reshape(-1, w.shape[-1])
    xi = sigma * jax.random.normal(key, (n, w2.shape[0]), w.dtype)
    return ((1 - d) * B.reshape(w2.shape) + eta * (xi.T @ (xi @ w2)) / n).reshape(B.shape)


def wm_update(eta: float, d: float, sigma: float, n: int) -> UpdateFeedback:
    """The hook: ``optax.apply_updates``, then :func:`mirror_step` per layer with its own key."""

    def update(params: Any, feedback: Any, updates: Any, key: jax.Array) -> tuple[Any, Any]:
        new = optax.apply_updates(params, updates)
        fbs, tree = jax.tree.flatten(feedback)
        keys = jax.random.split(key, len(fbs))
        ws = jax.tree.leaves(kernels_like(new, feedback))
        return new, jax.tree.unflatten(tree, [mirror_step(k, B, w, eta, d, sigma, n) for k, B, w in zip(keys, fbs, ws)])

    return update


def wm(eta: float = 0.05, d: float = 0.05, sigma: float = 1.0, n: int = 64) -> Rule:
    """The weight-mirror :class:`fa_jax.Rule` (module doc); bad options are one-line errors."""
    checks.positive_number("wm: eta", eta)
    checks.number_in("wm: d", d, 0, 1)
    checks.positive_number("wm: sigma", sigma)
    checks.positive_int("wm: n", n)
    return fa_rule("wm", None, f"weight mirror: B_l <- (1-d) B_l + eta xi^T xi W_l / n on noise xi ~ N(0, sigma^2) "
                   f"(eta={eta:g}, d={d:g}, sigma={sigma:g}, n={n}; Akrout et al. 2019)",
                   update_feedback=wm_update(eta, d, sigma, n))


register_factory("wm", wm)
