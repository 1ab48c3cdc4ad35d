"""Config for experiments/lectures/normalization.py: reproduces the verdict (raw vs z-score vs ZCA
inputs); docs/lectures.md, section "Input normalization".

    python experiments/lectures/normalization.py --config experiments/configs/lecture_normalization.py

Same run as `python experiments/lectures/normalization.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.x_max = 10.0
    config.reg_steps = 300
    config.reg_target = 0.01
    config.rule = "bp"
    config.seeds = 4
    config.steps = 1000
    config.width = 64
    config.lrs = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    config.digits_target = 0.3
    config.zca_eps = 0.1
    return config
