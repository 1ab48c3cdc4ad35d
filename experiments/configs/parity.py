"""Config for experiments/parity.py: reproduces the table of BP, FA and DFA on 30-bit 3-sparse
parity, 8 seeds; docs/main_job.md.

    python experiments/parity.py --config experiments/configs/parity.py

Same run as `python experiments/parity.py` (every option spelled out).

    python experiments/parity.py --config experiments/configs/parity.py:quick

The smoke test: get_config("quick") (ml_collections' FILE:ARG convention) sets only `quick`,
the same run as `python experiments/parity.py --quick`.
"""

import ml_collections


def get_config(variant=""):
    config = ml_collections.ConfigDict()
    if variant == "quick":
        config.quick = True
        return config
    if variant:
        raise ValueError(f"unknown variant {variant!r}; known: quick")
    config.n = 30
    config.k = 3
    config.rules = ["bp", "fa", "dfa"]
    config.seeds = 8
    config.steps = 1500
    config.batch_size = 64
    config.width = 256
    config.depth = 2
    config.activation = "relu"
    config.init = "he_uniform"
    config.optimizer = "adam"
    config.lr = 0.001
    config.loss = "bce"
    config.feedback_scale = 1.0
    config.feedback_dist = "uniform"
    config.feedback_scaling = "fan_in"
    config.n_train = None
    config.data_seed = 0
    config.eval_every = 100
    config.diagnostics = False
    return config
