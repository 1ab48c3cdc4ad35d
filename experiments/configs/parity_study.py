"""Config for experiments/parity_study.py: reproduces the default-grid table (6 methods x n {10, 20,
30} x k {2, 3}, width 128, 4 seeds); docs/parity_study.md.

    python experiments/parity_study.py --config experiments/configs/parity_study.py

Same run as `python experiments/parity_study.py` (every option spelled out).
The values are the script's DEFAULT settings (its flags have no defaults of their own),
so this file beats --quick/--full/--preset: drop a key to let a preset set it.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.dataset = "parity"
    config.distribution = "uniform"
    config.methods = ["bp", "dfa", "ntk", "rf_gaussian", "rf_relu", "rf_linear"]
    config.n = [10, 20, 30]
    config.k = [2, 3]
    config.width = [128]
    config.seeds = 4
    config.steps = 8000
    config.epochs = None
    config.batch_size = 64
    config.optimizer = "adam"
    config.lr = 0.001
    config.loss = None
    config.init = "he_uniform"
    config.eval_every = 250
    config.preset = "default"
    config.data_seed = 0
    config.data_dir = None
    config.offline = False
    return config
