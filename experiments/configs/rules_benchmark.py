"""Config for experiments/rules_benchmark.py: reproduces the table of every rule on parity, digits
(MLP, lecture conv net, all-conv net) and mnist5k (MLP, lecture conv net); docs/rules_benchmark.md.

    python experiments/rules_benchmark.py --config experiments/configs/rules_benchmark.py

Same run as `python experiments/rules_benchmark.py` (every option spelled out).
The values are the script's DEFAULT settings (its flags have no defaults of their own),
so this file beats --quick: drop a key to let --quick set it.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.tasks = ["parity", "digits-mlp", "mnist5k-mlp", "digits-lecture_cnn", "digits-allconv",
                    "mnist5k-lecture_cnn"]
    config.rules = ["bp", "fa", "dfa", "usf", "frsf", "brsf", "kp", "wm", "sdfa", "drtp", "pepita",
                    "local", "ff", "fg", "fg(kind=activity)", "node_pert"]
    config.lrs = [3e-4, 1e-3, 3e-3]
    config.seeds = 4
    config.steps = None
    config.eval_every = None
    config.batch_size = 32
    config.optimizer = "adam"
    config.scale = 1.0
    config.diagnostics = True
    return config
