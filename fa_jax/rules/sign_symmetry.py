"""Sign-concordant feedback: FA-family rules whose ``B_l`` has the signs of the current ``W_l``.

Each layer's input receives ``delta @ B_l.T`` (:class:`fa_jax.rules.FALinear`), with ``B_l``
recomputed from the current forward weight ``W_l`` at every step (no gradient flows through it):

- ``usf`` (uniform sign-concordant feedback, Liao, Leibo & Poggio 2016; biotorch's ``usf``):
  ``B_l = s_l * sign(W_l)``, ``s_l = 1 / sqrt(fan_in_l)``, the std of the default FA feedback
  draw (:func:`fa_jax.init_feedback`, ``scaling="fan_in"``) and of a LeCun init of ``W_l``.
  No feedback state.
- ``frsf`` (fixed random-magnitude sign-concordant feedback, Moskovitz et al. 2018; biotorch's
  ``frsf``): ``B_l = |M_l| * sign(W_l)``, ``M_l`` drawn once by :func:`fa_jax.init_feedback`
  exactly as FA's ``B_l`` (its ``dist``/``scaling``/``scale`` options apply).
- ``brsf`` (batchwise random-magnitude, Moskovitz et al. 2018; biotorch's ``brsf``): the same
  with ``M_l`` redrawn at every step from the step's key, by the rule's ``update_feedback``
  hook; the state holds the ``M_l`` the next step uses (first drawn as frsf's; redraws are
  U(-a, a), ``a = sqrt(3 / fan_in_l)``, init_feedback's default distribution).

With ``M = |W|`` (frsf) or weights that are all ``±s_l`` (usf) these rules are BP. Conv
kernels and wrapped Flax layers work the same way (``Rule.op`` hands the matrix to every weighted layer).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from fa_jax.models.init import fans
from fa_jax.rules.core import RULES, fa_rule, register


def usf_backward(w: jax.Array, B: jax.Array | None) -> jax.Array:
    """``s * sign(w)``, s = 1 / sqrt(fan_in) of ``w``'s shape (module doc); ``B`` is unused (None)."""
    del B
    return jnp.sign(w) / math.sqrt(fans(w.shape)[0])


def rsf_backward(w: jax.Array, M: jax.Array) -> jax.Array:
    """``|M| * sign(w)``: the magnitudes of ``M``, the signs of ``w`` (both shaped like ``w``)."""
    return jnp.abs(M) * jnp.sign(w)


def redraw_magnitudes(key: jax.Array, feedback: Any) -> Any:
    """Fresh ``M_l ~ U(-a, a)``, ``a = sqrt(3 / fan_in_l)``, one per matrix of ``feedback`` (brsf), in its structure."""
    ms, tree = jax.tree.flatten(feedback)
    keys = jax.random.split(key, len(ms))
    out = []
    for k, M in zip(keys, ms):
        a = math.sqrt(3.0 / fans(M.shape)[0])
        out.append(jax.random.uniform(k, M.shape, M.dtype, -a, a))
    return jax.tree.unflatten(tree, out)


def _brsf_update(params, feedback, updates, key):
    return optax.apply_updates(params, updates), redraw_magnitudes(key, feedback)


SIGN_RULES = {
    "usf": fa_rule("usf", usf_backward, "uniform sign-concordant FA: B_l = sign(W_l) / sqrt(fan_in) (Liao et al. 2016)",
                   feedback=False),
    "frsf": fa_rule("frsf", rsf_backward, "sign-concordant FA, fixed random magnitudes: B_l = |M_l| sign(W_l)"),
    "brsf": fa_rule("brsf", rsf_backward, "sign-concordant FA, magnitudes |M_l| redrawn every step: |M_l| sign(W_l)",
                    update_feedback=_brsf_update),
}

for _rule in SIGN_RULES.values():
    if _rule.name not in RULES:
        register(_rule)
