"""Config for experiments/lectures/regression.py: reproduces the verdict on diabetes (test RMSE, bp
vs dfa, 8 seeds); docs/lectures.md, section "Regression dataset".

    python experiments/lectures/regression.py --config experiments/configs/lecture_regression.py

Same run as `python experiments/lectures/regression.py --dataset diabetes` (every option spelled
out).
California housing (the script's default) is not cached here, so the published numbers
are from diabetes.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.dataset = "diabetes"
    config.rules = ["bp", "dfa"]
    config.seeds = 8
    config.steps = 3000
    config.width = 64
    config.lr = 0.001
    config.l2 = 0.0
    return config
