"""fa_jax: backprop, feedback alignment, DFA and lazy baselines as JAX wirings."""

from fa_jax import activations, data, experiment, feedback, init, losses, plots, report, rules, rundir, sharding
from fa_jax import diagnostics, memory, representations
from fa_jax.feedback_schemes import SCHEMES as FEEDBACK_SCHEMES
from fa_jax.feedback import check_feedback, init_feedback
from fa_jax.mlp import MLP, mlp
from fa_jax.optim import optimizer, set_learning_rate
from fa_jax.rules import RULES, Rule, register
from fa_jax.train import SweepResult, TrainState, make_train_step, sweep
# issue 6: the training toolbox of the seed lectures
from fa_jax import dropout, gradflow, lbfgs, norm, rbf, regularize, scaling, schedules  # noqa: E402
from fa_jax import early_stopping  # noqa: E402
from fa_jax.norm_mlp import NormMLP, norm_mlp  # noqa: E402
from fa_jax import lazy  # noqa: E402  registers the lazy rules: ntk, ntk_copy, rf_gaussian, rf_relu, rf_linear

__all__ = [
    "MLP", "RULES", "Rule", "SweepResult", "TrainState", "activations", "check_feedback",
    "data", "experiment", "feedback", "init", "init_feedback", "losses", "make_train_step", "mlp", "optimizer",
    "plots", "register", "report", "rules", "rundir", "sharding", "set_learning_rate", "sweep",
]
__all__ += ["FEEDBACK_SCHEMES", "diagnostics", "memory", "representations", "lazy"]

from fa_jax import cnn, conv  # noqa: E402  (image models: fj.cnn.sequential, fj.cnn.get)

__all__ += ["cnn", "conv"]
__version__ = "0.1.0"
