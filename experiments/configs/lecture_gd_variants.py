"""Config for experiments/lectures/gd_variants.py: reproduces the verdict (steps to loss < 0.01 per
GD variant); docs/lectures.md, section "GD variants on linear regression".

    python experiments/lectures/gd_variants.py --config experiments/configs/lecture_gd_variants.py

Same run as `python experiments/lectures/gd_variants.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.steps = 100
    config.target = 0.01
    config.start = [-1.0, -1.0]
    return config
