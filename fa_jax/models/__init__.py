"""Models and their parts: the model contract, MLPs (plain, and with normalization/dropout), conv and
residual layers, CNN builders, initializers, activations, normalization, dropout, RBF networks."""

from fa_jax.models.contract import LayeredModel, Model, StatefulModel, check_model, n_params

__all__ = ["LayeredModel", "Model", "StatefulModel", "check_model", "n_params"]
