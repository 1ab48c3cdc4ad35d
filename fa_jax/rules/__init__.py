"""Learning rules: ``jax.grad`` of what the rule says is its update (a wiring of the forward pass, or its objective).

- :mod:`fa_jax.rules.rule`: the one interface, :class:`Rule` (every hook typed, with its default), its
  :class:`Family`, the :class:`Batch` and :class:`Aux` an objective sees and returns, :func:`surrogate`;
- :mod:`fa_jax.rules.ops`: the layer ops (``linear``, ``FALinear``) and the ``custom_vjp`` ops (``fa_linear``,
  ``fa_apply``, ``fa_layer``, ``dfa_output``);
- :mod:`fa_jax.rules.core`: bp, fa, dfa, ``fa_rule`` for FA-family rules, and the registry (names and specs, each
  rule's one normal form: ``normalize``);
- :mod:`fa_jax.rules.sign_symmetry`: FA with sign-concordant feedback (usf, frsf, brsf);
- :mod:`fa_jax.rules.kolen_pollack` (kp) and :mod:`fa_jax.rules.mirror` (wm): FA with evolving feedback;
- :mod:`fa_jax.rules.direct`: DFA-family rules with other sources (drtp: the target; sdfa: sign(e));
- :mod:`fa_jax.rules.pepita`: PEPITA, a second forward pass on an error-modulated input (no backward pass);
- :mod:`fa_jax.rules.conv_feedback`: the DFA family's weight-shared conv feedback (``dfa(conv=shared)``);
- :mod:`fa_jax.rules.local` (local losses), :mod:`fa_jax.rules.forward_forward` (ff) and
  :mod:`fa_jax.rules.perturbation` (forward gradients fg, node perturbation): rules without a global
  backward pass, objectives over :mod:`fa_jax.rules.layered` (a layered model's forward, block by block);
- :mod:`fa_jax.rules.lazy`: the lazy baselines (ntk, ntk_copy, rf_gaussian, rf_relu, rf_linear);
- :mod:`fa_jax.rules.feedback` and :mod:`fa_jax.rules.feedback_schemes`: the feedback matrices;
- :mod:`fa_jax.rules.reference`: BP and DFA gradients of an MLP written by hand in numpy.
"""

from fa_jax.rules import (  # register rules
    conv_feedback,
    direct,
    forward_forward,
    kolen_pollack,
    lazy,
    local,
    mirror,
    pepita,
    perturbation,
    sign_symmetry,
)
from fa_jax.rules.core import (
    FACTORIES,
    RULES,
    FALinear,
    LayerOp,
    Linear,
    bp,
    check_model,
    dfa,
    dfa_output,
    direct_signals,
    fa,
    fa_apply,
    fa_family,
    fa_linear,
    fa_rule,
    get,
    linear,
    normalize,
    parse_spec,
    register,
    register_factory,
    split_specs,
    used_matrices,
)
from fa_jax.rules.rule import Aux, Batch, Family, Rule, surrogate

__all__ = ["FACTORIES", "FALinear", "Aux", "Batch", "Family", "LayerOp", "Linear", "RULES", "Rule", "bp",
           "check_model", "conv_feedback", "dfa", "dfa_output", "direct", "direct_signals", "fa", "fa_apply", "fa_family", "fa_linear",
           "fa_rule", "forward_forward", "get", "kolen_pollack", "lazy", "linear", "local", "mirror", "normalize", "parse_spec", "pepita", "perturbation", "register",
           "register_factory", "sign_symmetry", "split_specs", "surrogate", "used_matrices"]
