"""Config for experiments/lectures/gradients.py: reproduces the verdict (gradient norms of 50-layer
nets, clipping); docs/lectures.md, section "Vanishing and exploding gradients".

    python experiments/lectures/gradients.py --config experiments/configs/lecture_gradients.py

Same run as `python experiments/lectures/gradients.py` (every option spelled out).
"""


def get_config():
    return {
        "depth": 50,
        "seeds": 16,
        "steps": 200,
        "clip_norm": 1.0,
    }
