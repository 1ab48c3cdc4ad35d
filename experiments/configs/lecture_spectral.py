"""Config for experiments/lectures/spectral.py: reproduces the verdict (MSE vs spectral MSE on
phase-shifted signals, bp/fa/dfa, 4 seeds); docs/lectures.md, section "Spectral MSE on
phase-shifted signals".

    python experiments/lectures/spectral.py --config experiments/configs/lecture_spectral.py

Same run as `python experiments/lectures/spectral.py` (every option spelled out).
"""

import math


def get_config():
    return {
        "rules": ["bp", "fa", "dfa"],
        "seeds": 4,
        "steps": 2000,
        "width": 256,
        "lr": 0.001,
        "t": 64,
        "components": 3,
        "max_freq": 8,
        "noise": 0.5,
        "shift": math.pi / 2,
    }
