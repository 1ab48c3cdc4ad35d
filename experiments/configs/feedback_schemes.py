"""Config for experiments/feedback_schemes.py: reproduces the table of FA and DFA under each
feedback scheme on digits and parity; docs/alignment.md, section "Feedback schemes".

    python experiments/feedback_schemes.py --config experiments/configs/feedback_schemes.py

Same run as `python experiments/feedback_schemes.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.tasks = ["digits", "parity"]
    config.rules = ["fa", "dfa"]
    config.schemes = ["default", "nokland_dfa", "nokland_fa", "xavier", "akrout", "tinydfa"]
    config.depth = 2
    config.width = 128
    config.activation = "tanh"
    config.seeds = 4
    config.steps = 1000
    config.batch_size = 64
    config.lr = 0.001
    config.optimizer = "adam"
    config.eval_every = 100
    config.parity_n = 16
    config.parity_k = 3
    return config
