"""Config for experiments/lectures/xor.py: reproduces the verdict (seeds that fail per rule and
init, 20 seeds); docs/lectures.md, section "XOR and initialization".

    python experiments/lectures/xor.py --config experiments/configs/lecture_xor.py

Same run as `python experiments/lectures/xor.py --rules bp,fa,dfa` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.seeds = 20
    config.steps = 1000
    config.lr = 0.1
    config.momentum = 0.99
    config.rules = ["bp", "fa", "dfa"]
    return config
