"""Models and their parts: MLPs (plain, and with normalization/dropout), conv and residual layers,
CNN builders, initializers, activations, normalization, dropout, RBF networks."""
