"""Config for experiments/lectures/dropout_norms.py: reproduces the verdict (dropout variants and
norm layers under bp and dfa on digits, 4 seeds); docs/lectures.md, section "Dropout variants and
norm layers".

    python experiments/lectures/dropout_norms.py --config experiments/configs/lecture_dropout_norms.py

Same run as `python experiments/lectures/dropout_norms.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.rules = ["bp", "dfa"]
    config.dropouts = ["none", "bernoulli", "gaussian", "dropconnect", "standout"]
    config.norms = ["batch", "layer", "instance", "group"]
    config.seeds = 4
    config.steps = 2000
    config.lr = 0.001
    config.n_train = 500
    config.width = 256
    config.cnn_width = 0.5
    config.p = 0.5
    config.groups = 8
    return config
