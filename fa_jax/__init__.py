"""fa_jax: backprop, feedback alignment, DFA and lazy baselines as JAX wirings.

The groups: :mod:`fa_jax.rules` (the wirings and their feedback), :mod:`fa_jax.models`,
:mod:`fa_jax.optim`, :mod:`fa_jax.training`, :mod:`fa_jax.analysis`, :mod:`fa_jax.data` and
:mod:`fa_jax.runs` (run directories, the study engine, tables and plots). The names below
are the API tour's; matplotlib, scikit-learn, orbax, tensorflow-datasets and flax (``fj.from_flax``,
``fj.DFAPoint``, :mod:`fa_jax.wrap`) load when used.
"""

from fa_jax import data, losses, optim, rules
from fa_jax.analysis import diagnostics, gradflow, representations
from fa_jax.data import scaling
from fa_jax.models import activations, cnn, conv, dropout, init, norm, rbf
from fa_jax.models.mlp import MLP, mlp
from fa_jax.models.norm_mlp import NormMLP, norm_mlp
from fa_jax.optim import lbfgs, optimizer, regularize, schedules, set_learning_rate
from fa_jax.rules import RULES, Rule, feedback, lazy, register
from fa_jax.rules.feedback import check_feedback, init_feedback
from fa_jax.rules.feedback_schemes import SCHEMES as FEEDBACK_SCHEMES
from fa_jax.runs import plots, rundir, tables
from fa_jax.runs.study import Study, compare_rules
from fa_jax.training import early_stopping, memory, sharding
from fa_jax.training.state import TrainState
from fa_jax.training.step import make_train_step
from fa_jax.training.sweep import sweep
from fa_jax.training.sweep_result import SweepResult

__all__ = [  # the API tour's names, sorted
    "activations", "check_feedback", "DFAOutput", "DFAPoint", "FlaxModel", "from_flax", "NNXDFAPoint", "cnn", "compare_rules", "conv", "data", "diagnostics", "dropout",
    "early_stopping", "feedback", "FEEDBACK_SCHEMES", "gradflow", "init", "init_feedback", "lazy", "lbfgs",
    "losses", "make_train_step", "memory", "MLP", "mlp", "norm", "norm_mlp", "NormMLP", "optim", "optimizer",
    "plots", "rbf", "register", "regularize", "representations", "Rule", "RULES", "rules", "rundir", "scaling",
    "schedules", "set_learning_rate", "sharding", "Study", "sweep", "SweepResult", "tables", "TrainState",
]
__version__ = "0.1.0"

# Bring your own model (fa_jax.wrap): flax loads only when one of these is used
_WRAP = {"from_flax": "fa_jax.wrap.model", "FlaxModel": "fa_jax.wrap.model", "DFAPoint": "fa_jax.wrap.linen",
         "DFAOutput": "fa_jax.wrap.linen",
         "NNXDFAPoint": "fa_jax.wrap.nnx"}


def __getattr__(name):
    if name in _WRAP:
        import importlib

        return getattr(importlib.import_module(_WRAP[name]), name)
    raise AttributeError(f"module 'fa_jax' has no attribute {name!r}")
