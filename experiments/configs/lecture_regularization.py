"""Config for experiments/lectures/regularization.py: reproduces the verdict (L2/L1 RBF nets,
dropout and decay on digits); docs/lectures.md, section "Regularization".

    python experiments/lectures/regularization.py --config experiments/configs/lecture_regularization.py

Same run as `python experiments/lectures/regularization.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.sigma = 0.1
    config.rbf_steps = 5000
    config.rule = "bp"
    config.seeds = 4
    config.steps = 2000
    config.n_train = 300
    config.width = 256
    config.dropout = 0.5
    config.decay = 0.1
    return config
