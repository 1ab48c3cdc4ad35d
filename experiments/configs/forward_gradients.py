"""Config for experiments/forward_gradients.py: reproduces the forward-gradient variance tables and
figures (cosine to BP vs draws averaged, per width; test accuracy per width); docs/local_rules.md.

    python experiments/forward_gradients.py --config experiments/configs/forward_gradients.py

Same run as `python experiments/forward_gradients.py` (every option spelled out).
The values are the script's DEFAULT settings (its flags have no defaults of their own),
so this file beats --quick: drop a key to let --quick set it.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.widths = [32, 128, 512]
    config.rules = ["fg(kind=weight)", "fg(kind=activity)", "node_pert"]
    config.ns = [1, 4, 16, 64, 256]
    config.seeds = 4
    config.estimate_batch = 32
    config.steps = 2000
    config.eval_every = 200
    config.batch_size = 32
    config.lrs = [3e-4, 1e-3, 3e-3]
    config.optimizer = "adam"
    return config
