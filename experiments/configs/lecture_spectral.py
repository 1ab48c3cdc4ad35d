"""Config for experiments/lectures/spectral.py: reproduces the verdict (MSE vs spectral MSE on
phase-shifted signals, bp/fa/dfa, 4 seeds); docs/lectures.md, section "Spectral MSE on
phase-shifted signals".

    python experiments/lectures/spectral.py --config experiments/configs/lecture_spectral.py

Same run as `python experiments/lectures/spectral.py` (every option spelled out).
"""

import math

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.rules = ["bp", "fa", "dfa"]
    config.seeds = 4
    config.steps = 2000
    config.width = 256
    config.lr = 0.001
    config.t = 64
    config.components = 3
    config.max_freq = 8
    config.noise = 0.5
    config.shift = math.pi / 2
    return config
