"""Config for experiments/lectures/gd_variants.py: reproduces the verdict (steps to loss < 0.01 per
GD variant); docs/lectures.md, section "GD variants on linear regression".

    python experiments/lectures/gd_variants.py --config experiments/configs/lecture_gd_variants.py

Same run as `python experiments/lectures/gd_variants.py` (every option spelled out).
"""


def get_config():
    return {
        "steps": 100,
        "target": 0.01,
        "start": [-1.0, -1.0],
    }
