"""fa_jax: backprop, feedback alignment, DFA and lazy baselines as JAX wirings.

The groups: :mod:`fa_jax.rules` (the wirings and their feedback), :mod:`fa_jax.models`,
:mod:`fa_jax.optim`, :mod:`fa_jax.training`, :mod:`fa_jax.analysis`, :mod:`fa_jax.data` and
:mod:`fa_jax.runs` (run directories, the study engine, tables and plots). The names below
are the API tour's. Each loads on first use (``import fa_jax`` itself imports nothing, not
even jax), so a script's ``--help`` or a bad flag answers at once; flax, matplotlib,
scikit-learn, orbax and tensorflow-datasets load only with the names that need them.
"""

import importlib

# name: the module it lives in (an attribute of that module, or its submodule of that name)
_SOURCES = {
    "fa_jax": ("data", "losses", "optim", "rules"),
    "fa_jax.analysis": ("diagnostics", "gradflow", "representations"),
    "fa_jax.data": ("scaling",),
    "fa_jax.errors": ("InputError",),
    "fa_jax.models": ("activations", "cnn", "conv", "dropout", "init", "norm", "rbf"),
    "fa_jax.models.mlp": ("MLP", "mlp"),
    "fa_jax.models.norm_mlp": ("NormMLP", "norm_mlp"),
    "fa_jax.optim": ("lbfgs", "optimizer", "regularize", "schedules", "set_learning_rate"),
    "fa_jax.rules": ("RULES", "Family", "Rule", "feedback", "lazy", "register"),
    "fa_jax.rules.feedback": ("check_feedback", "init_feedback"),
    "fa_jax.runs": ("plots", "rundir", "tables"),
    "fa_jax.runs.study": ("Study", "compare_rules"),
    "fa_jax.training": ("early_stopping", "memory", "sharding"),
    "fa_jax.training.state": ("TrainState",),
    "fa_jax.training.step": ("make_train_step",),
    "fa_jax.training.sweep": ("sweep",),
    "fa_jax.training.sweep_config": ("SweepConfig",),
    "fa_jax.training.sweep_result": ("SweepResult",),
    "fa_jax.wrap.model": ("from_flax", "FlaxModel"),   # bring your own model: flax loads here
    "fa_jax.wrap.linen": ("DFAPoint", "DFAOutput"),
    "fa_jax.wrap.nnx": ("NNXDFAPoint",),
}
_HOME = {name: module for module, names in _SOURCES.items() for name in names}
_ALIASES = {"FEEDBACK_SCHEMES": ("fa_jax.rules.feedback_schemes", "SCHEMES")}

__all__ = sorted([*_HOME, *_ALIASES], key=str.lower)  # the API tour's names
__version__ = "0.1.0"

# What static tools (type checkers, IDEs) see instead of __getattr__: each name of _SOURCES and
# _ALIASES imported from its home, one line a name (``as`` marks it re-exported). Never runs, so
# ``import fa_jax`` stays light; tests/test_public_api.py checks it names exactly those names.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; static tools take it as True
if TYPE_CHECKING:
    from fa_jax import data as data
    from fa_jax import losses as losses
    from fa_jax import optim as optim
    from fa_jax import rules as rules
    from fa_jax.analysis import diagnostics as diagnostics
    from fa_jax.analysis import gradflow as gradflow
    from fa_jax.analysis import representations as representations
    from fa_jax.data import scaling as scaling
    from fa_jax.errors import InputError as InputError
    from fa_jax.models import activations as activations
    from fa_jax.models import cnn as cnn
    from fa_jax.models import conv as conv
    from fa_jax.models import dropout as dropout
    from fa_jax.models import init as init
    from fa_jax.models import norm as norm
    from fa_jax.models import rbf as rbf
    from fa_jax.models.mlp import MLP as MLP
    from fa_jax.models.mlp import mlp as mlp
    from fa_jax.models.norm_mlp import NormMLP as NormMLP
    from fa_jax.models.norm_mlp import norm_mlp as norm_mlp
    from fa_jax.optim import lbfgs as lbfgs
    from fa_jax.optim import optimizer as optimizer
    from fa_jax.optim import regularize as regularize
    from fa_jax.optim import schedules as schedules
    from fa_jax.optim import set_learning_rate as set_learning_rate
    from fa_jax.rules import RULES as RULES
    from fa_jax.rules import Family as Family
    from fa_jax.rules import Rule as Rule
    from fa_jax.rules import feedback as feedback
    from fa_jax.rules import lazy as lazy
    from fa_jax.rules import register as register
    from fa_jax.rules.feedback import check_feedback as check_feedback
    from fa_jax.rules.feedback import init_feedback as init_feedback
    from fa_jax.rules.feedback_schemes import SCHEMES as FEEDBACK_SCHEMES
    from fa_jax.runs import plots as plots
    from fa_jax.runs import rundir as rundir
    from fa_jax.runs import tables as tables
    from fa_jax.runs.study import Study as Study
    from fa_jax.runs.study import compare_rules as compare_rules
    from fa_jax.training import early_stopping as early_stopping
    from fa_jax.training import memory as memory
    from fa_jax.training import sharding as sharding
    from fa_jax.training.state import TrainState as TrainState
    from fa_jax.training.step import make_train_step as make_train_step
    from fa_jax.training.sweep import sweep as sweep
    from fa_jax.training.sweep_config import SweepConfig as SweepConfig
    from fa_jax.training.sweep_result import SweepResult as SweepResult
    from fa_jax.wrap.linen import DFAOutput as DFAOutput
    from fa_jax.wrap.linen import DFAPoint as DFAPoint
    from fa_jax.wrap.model import FlaxModel as FlaxModel
    from fa_jax.wrap.model import from_flax as from_flax
    from fa_jax.wrap.nnx import NNXDFAPoint as NNXDFAPoint


if not TYPE_CHECKING:  # hidden from static tools, so they flag a name fa_jax lacks
    def __getattr__(name: str) -> object:
        if name in _ALIASES:
            module, attr = _ALIASES[name]
            value = getattr(importlib.import_module(module), attr)
        elif name in _HOME:
            module = _HOME[name]
            if module == __name__:
                value = importlib.import_module(f"{module}.{name}")
            else:
                parent = importlib.import_module(module)
                value = getattr(parent, name) if hasattr(parent, name) else importlib.import_module(f"{module}.{name}")
        else:
            raise AttributeError(f"module 'fa_jax' has no attribute {name!r}")
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
