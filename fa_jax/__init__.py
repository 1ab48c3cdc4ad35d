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
    "fa_jax.rules": ("RULES", "Rule", "feedback", "lazy", "register"),
    "fa_jax.rules.feedback": ("check_feedback", "init_feedback"),
    "fa_jax.runs": ("plots", "rundir", "tables"),
    "fa_jax.runs.study": ("Study", "compare_rules"),
    "fa_jax.training": ("early_stopping", "memory", "sharding"),
    "fa_jax.training.state": ("TrainState",),
    "fa_jax.training.step": ("make_train_step",),
    "fa_jax.training.sweep": ("sweep",),
    "fa_jax.training.sweep_result": ("SweepResult",),
    "fa_jax.wrap.model": ("from_flax", "FlaxModel"),   # bring your own model: flax loads here
    "fa_jax.wrap.linen": ("DFAPoint", "DFAOutput"),
    "fa_jax.wrap.nnx": ("NNXDFAPoint",),
}
_HOME = {name: module for module, names in _SOURCES.items() for name in names}
_ALIASES = {"FEEDBACK_SCHEMES": ("fa_jax.rules.feedback_schemes", "SCHEMES")}

__all__ = sorted([*_HOME, *_ALIASES], key=str.lower)  # the API tour's names
__version__ = "0.1.0"


def __getattr__(name):
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


def __dir__():
    return sorted({*globals(), *__all__})
