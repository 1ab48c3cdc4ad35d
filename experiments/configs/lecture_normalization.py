"""Config for experiments/lectures/normalization.py: reproduces the verdict (raw vs z-score vs ZCA
inputs); docs/lectures.md, section "Input normalization".

    python experiments/lectures/normalization.py --config experiments/configs/lecture_normalization.py

Same run as `python experiments/lectures/normalization.py` (every option spelled out).
"""


def get_config():
    return {
        "x_max": 10.0,
        "reg_steps": 300,
        "reg_target": 0.01,
        "rule": "bp",
        "seeds": 4,
        "steps": 1000,
        "width": 64,
        "lrs": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
        "digits_target": 0.3,
        "zca_eps": 0.1,
    }
