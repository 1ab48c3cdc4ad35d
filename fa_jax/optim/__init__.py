"""Optimizers (the optax zoo), regularizer and clipping links, schedules, L-BFGS, GD paths on 2-D losses."""

from fa_jax.optim.zoo import OPTIMIZERS, check_learning_rate, optimizer, register, set_learning_rate

__all__ = ["OPTIMIZERS", "check_learning_rate", "optimizer", "register", "set_learning_rate"]
