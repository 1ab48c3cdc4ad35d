"""Config for experiments/alignment.py: reproduces the digits tables (test accuracy, angle to BP per
layer, weight alignment) and the parity angles; docs/alignment.md.

    python experiments/alignment.py --config experiments/configs/alignment.py

Same run as `python experiments/alignment.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.tasks = ["digits", "parity"]
    config.rules = ["bp", "fa", "dfa"]
    config.depth = 3
    config.width = 128
    config.activation = "tanh"
    config.seeds = 4
    config.steps = 2000
    config.batch_size = 64
    config.lr = 0.001
    config.optimizer = "adam"
    config.eval_every = 100
    config.parity_n = 16
    config.parity_k = 3
    config.feedback_scheme = None
    config.embed_layer = None
    config.embed_method = "tsne"
    return config
