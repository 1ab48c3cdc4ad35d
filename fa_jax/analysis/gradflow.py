"""Gradient flow through depth: per-layer gradient norms (vanishing and exploding gradients, as in
the introductory deep-learning lectures).

The backpropagated gradient contains products ``(W f')^L`` that vanish or explode with the
depth L (Hochreiter 1991); these functions measure it layer by layer for any rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from fa_jax import losses as losses_lib

if TYPE_CHECKING:
    from fa_jax.models.contract import Model


def layer_grad_norms(model: Model, params: Any, x: jax.Array, y: jax.Array, *, loss: str = "mse", rule: str = "bp",
                     feedback: Any = None) -> jax.Array:
    """(L,) Frobenius norms ``|dJ/dW_l|`` of the rule's update for each layer l = 1..L.

    Args:
        model: a model (``model.apply(params, x, rule=, feedback=)``) whose params are one
            dict per layer with ``"w"``.
        params: its params.
        x: (batch, n_in) inputs; y: labels as ``fa_jax.losses`` expects.
        loss: a name of :mod:`fa_jax.losses` (default ``"mse"``).
        rule: a name from ``fj.RULES`` (default ``"bp"``).
        feedback: the rule's fixed feedback (:func:`fa_jax.init_feedback`); None for BP.
    """
    loss_fn = losses_lib.get(loss)
    grads = jax.grad(lambda p: loss_fn(model.apply(p, x, rule=rule, feedback=feedback), y))(params)
    return jnp.stack([jnp.linalg.norm(g["w"]) for g in grads])
