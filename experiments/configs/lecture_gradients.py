"""Config for experiments/lectures/gradients.py: reproduces the verdict (gradient norms of 50-layer
nets, clipping); docs/lectures.md, section "Vanishing and exploding gradients".

    python experiments/lectures/gradients.py --config experiments/configs/lecture_gradients.py

Same run as `python experiments/lectures/gradients.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.depth = 50
    config.seeds = 16
    config.steps = 200
    config.clip_norm = 1.0
    return config
