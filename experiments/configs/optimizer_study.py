"""Config for experiments/optimizer_study.py: reproduces the table of the best learning rate per
dataset, rule and optimizer; docs/optimizer_study.md.

    python experiments/optimizer_study.py --config experiments/configs/optimizer_study.py

Same run as `python experiments/optimizer_study.py` (every option spelled out).
The values are the script's DEFAULT settings (its flags have no defaults of their own),
so this file beats --quick: drop a key to let --quick set it.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.datasets = ["parity", "digits-parity"]
    config.rules = ["bp", "dfa"]
    config.optimizers = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "nadam"]
    config.lr_factors = [1 / 3, 1.0, 3.0]
    config.seeds = 2
    config.steps = 2000
    config.batch_size = 64
    config.width = 128
    config.depth = 1
    config.eval_every = 100
    return config
