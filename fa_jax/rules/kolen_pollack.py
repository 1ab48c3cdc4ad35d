"""Kolen-Pollack: FA whose ``B_l`` receives the same update as ``W_l``, both decaying.

``kp(lam=0.999, b0="random")`` (the spec ``"kp(lam=...; b0=...)"``; plain ``"kp"`` = the defaults).
Each layer's input receives ``delta @ B_l.T`` (FA, :class:`fa_jax.rules.FALinear`); after the
optimizer, inside the compiled step (the rule's ``update_feedback`` hook), with ``u_l`` the
optimizer's update of ``W_l``:

    W_l <- lam * W_l + u_l,        B_l <- lam * B_l + u_l

(other params, e.g. biases, take their update undecayed). So ``B_l - W_l`` shrinks by ``lam``
at every step and ``B`` converges to ``W`` (Kolen & Pollack 1994; Akrout et al. 2019, eqs.
16-17, where ``lam = 1 - lr * weight_decay``). With ``lam = 1`` and ``B_0 = W_0`` it is BP.

Options: ``lam`` in (0, 1], default 0.999 (ours: 0.37 of the initial mismatch left after
1000 steps; Akrout et al.'s FCNN code defaults to no decay, ``weight_decay=1``, under which
KP keeps ``B - W`` constant; their ImageNet runs, weight decay 1e-4 at lr 0.1, are
``lam = 1 - 1e-5``). ``b0``: ``"random"`` (default; ``B_0`` drawn as FA's by
:func:`fa_jax.init_feedback`, its options apply) or ``"w"`` (``B_0 = W_0``, a copy of the
initial weights).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import optax

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.rules.core import fa_rule, register_factory
from fa_jax.rules.kernels import kernels_like, with_kernels

if TYPE_CHECKING:
    from fa_jax.rules.rule import Rule, UpdateFeedback

B0 = ("random", "w")


def kp_update(lam: float) -> UpdateFeedback:
    """The hook: ``W <- lam W + u``, ``B <- lam B + u`` per layer (module doc)."""

    def update(params: Any, feedback: Any, updates: Any, key: jax.Array) -> tuple[Any, Any]:
        del key
        w, u = kernels_like(params, feedback), kernels_like(updates, feedback)
        new_w = jax.tree.map(lambda a, b: lam * a + b, w, u)
        new_fb = jax.tree.map(lambda a, b: lam * a + b, feedback, u)
        return with_kernels(optax.apply_updates(params, updates), feedback, new_w), new_fb

    return update


def _copy_weights(key, model, params, dtype):
    del key
    if params is None:
        raise InputError("rule kp(b0=w) copies the initial weights: pass params= to fj.init_feedback")
    contract.weight_shapes(model)
    return [jnp.asarray(w, dtype) for w in contract.kernels(model, params)]


def kp(lam: float = 0.999, b0: str = "random") -> Rule:
    """The Kolen-Pollack :class:`fa_jax.Rule` with decay ``lam`` in (0, 1] and ``B_0`` from ``b0`` (module doc)."""
    checks.number_in("kp: lam", lam, 0, 1, lo_open=True, hi_open=False)
    checks.choice("kp option b0", b0, B0)
    doc = f"Kolen-Pollack: B_l and W_l both take u_l and decay by lam={lam:g} (Akrout et al. 2019)"
    return fa_rule("kp", None, doc, update_feedback=kp_update(lam), init=_copy_weights if b0 == "w" else None)


register_factory("kp", kp)
