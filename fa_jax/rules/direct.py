"""DFA-family rules with another source than the error: ``drtp`` (the target) and ``sdfa`` (sign(e)).

Like ``dfa`` (:mod:`fa_jax.rules.core`), hidden layers see their input through
``stop_gradient``; one output node ties the output ``y`` to every hidden activation ``h_l``
and sends ``source @ B_l`` to ``h_l`` (one matmul, :func:`fa_jax.rules.core.direct_signals`),
``B_l`` fixed, of shape (n_out, h_l), drawn by :func:`fa_jax.init_feedback` as DFA's. The
output layer gets its true gradient ``h_L^T e``.

- ``sdfa`` (sign-DFA; Frenkel et al. 2021 compare it, after Nøkland 2016's discussion): the
  source is ``sign(e)``, ``e = dL/dy``; a positive entry-wise rescaling of the error changes
  nothing below the output layer.
- ``drtp`` (direct random target projection, Frenkel, Lefebvre & Bol 2021): the source is the
  target ``y_star``: the one-hot vector of the class for a multi-class output, the ±1 label
  for a binary one (n_out = 1; 2-D float targets shaped like ``y`` are used as given). The
  hidden layers' signal depends on the batch's labels only, never on the network's output.

How drtp gets the target inside ``jax.grad`` through ``model.apply``: the rule has
``needs_targets=True``, so ``fj.mlp`` / ``fj.norm_mlp`` / ``fj.cnn`` ``apply(..., targets=labels)``
hand the labels to its wiring (other rules ignore them) and ``fj.sweep``'s train step and the
diagnostics pass the batch's labels. Without targets the forward pass works (evaluation),
and differentiating it is a one-line error. Recovering the target from the output cotangent
would tie the rule to one loss; passing it keeps drtp independent of the loss.

Options (specs, :func:`fa_jax.rules.core.register_factory`): ``dfa``, ``sdfa`` and ``drtp`` take
``conv`` (``"dense"``, the default and the plain names, or ``"shared"``) and ``k`` (odd, default 3):
weight-shared conv feedback for (H, W, C) activations, :mod:`fa_jax.rules.conv_feedback`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from fa_jax.errors import InputError
from fa_jax.rules import conv_feedback
from fa_jax.rules.core import FACTORIES, RULES, Rule, _dfa_shapes, direct_signals, register_factory


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def direct_output(source: Callable[[jax.Array, jax.Array | None], jax.Array], y: jax.Array,
                  hs: Sequence[jax.Array], Bs: Sequence[jax.Array], t: jax.Array | None) -> jax.Array:
    """Identity on ``y`` whose backward sends ``source(e, t) @ B_l`` to each ``hs[l]`` and ``e`` to ``y``.

    source: ``(e, t) -> (..., n_out)``; y: (..., n_out); hs[l]: (..., h_l); Bs[l]: (n_out, h_l);
    t: the encoded target (..., n_out) or None (for sources that do not read it).
    """
    return y


def _direct_fwd(source, y, hs, Bs, t):
    return y, (hs, Bs, t)


def _direct_bwd(source, res, e):
    hs, Bs, t = res
    dt = None if t is None else jnp.zeros_like(t)
    return e, direct_signals(source(e, t), hs, Bs), [jnp.zeros_like(B) for B in Bs], dt


direct_output.defvjp(_direct_fwd, _direct_bwd)


def _sign_source(e, t):
    return jnp.sign(e)


def _target_source(e, t):
    if t is None:
        raise InputError("rule 'drtp' sends the target to the hidden layers: differentiate "
                         "model.apply(params, x, rule='drtp', feedback=fb, targets=labels)")
    return t


def encode_targets(targets: ArrayLike, y: jax.Array) -> jax.Array:
    """The drtp target for outputs ``y`` (..., n_out): one-hot of int labels, the ±1 label for n_out = 1."""
    targets = jax.lax.stop_gradient(jnp.asarray(targets))
    if targets.shape == y.shape:
        return targets.astype(y.dtype)
    if y.shape[-1] == 1:
        return targets.reshape(y.shape).astype(y.dtype)
    return jax.nn.one_hot(targets, y.shape[-1], dtype=y.dtype)


def _direct_node(source):
    def node(y, hs, feedback, targets=None):
        t = None if targets is None else encode_targets(targets, y)
        return direct_output(source, y, hs, list(feedback), t)
    return node


def _check_targets_model(model):
    try:
        takes = "targets" in inspect.signature(model.apply).parameters
    except (AttributeError, TypeError, ValueError):  # no apply, or one without a signature
        takes = False
    if not takes:
        raise InputError(f"rule 'drtp' needs model.apply(..., targets=); fj.mlp, fj.norm_mlp and fj.cnn models "
                         f"take them, {type(model).__name__} does not")


DIRECT = {
    "sdfa": Rule("sdfa", None, _dfa_shapes,
                 "sign-DFA: hidden h_l receives sign(e) @ B_l, B_l of shape (n_out, h_l)", family="dfa",
                 output=_direct_node(_sign_source)),
    "drtp": Rule("drtp", None, _dfa_shapes,
                 "direct random target projection: hidden h_l receives y_star @ B_l (Frenkel et al. 2021)",
                 family="dfa", needs_targets=True, check_model=_check_targets_model,
                 output=_direct_node(_target_source)),
}

# the DFA family's options (conv, k); the plain names stay the rules above and core's dfa
for _rule in [RULES["dfa"], *DIRECT.values()]:
    if _rule.name not in FACTORIES:
        register_factory(_rule.name, conv_feedback.factory(_rule), replace=_rule.name == "dfa")
