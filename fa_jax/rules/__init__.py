"""Learning rules as wirings of the forward pass: ``jax.grad`` through ``model.apply(rule=...)`` is the update.

- :mod:`fa_jax.rules.core`: bp, fa, dfa, the layer ops (``linear``, ``FALinear``; ``fa_family`` for FA-family
  rules), the ``custom_vjp`` ops (``fa_linear``, ``fa_apply``, ``dfa_output``) and the registry;
- :mod:`fa_jax.rules.lazy`: the lazy baselines (ntk, ntk_copy, rf_gaussian, rf_relu, rf_linear);
- :mod:`fa_jax.rules.feedback` and :mod:`fa_jax.rules.feedback_schemes`: the feedback matrices;
- :mod:`fa_jax.rules.reference`: BP and DFA gradients of an MLP written by hand in numpy.
"""

from fa_jax.rules import lazy  # registers the lazy rules
from fa_jax.rules.core import (RULES, FALinear, LayerOp, Linear, Rule, bp, check_model, dfa, dfa_output, fa, fa_apply,
                                fa_family, fa_linear, get, linear, register)

__all__ = ["FALinear", "LayerOp", "Linear", "RULES", "Rule", "bp", "check_model", "dfa", "dfa_output", "fa", "fa_apply",
           "fa_family", "fa_linear", "get", "lazy", "linear", "register"]
