"""Config for experiments/lectures/xor.py: reproduces the verdict (seeds that fail per rule and
init, 20 seeds); docs/lectures.md, section "XOR and initialization".

    python experiments/lectures/xor.py --config experiments/configs/lecture_xor.py

Same run as `python experiments/lectures/xor.py --rules bp,fa,dfa` (every option spelled out).
"""


def get_config():
    return {
        "seeds": 20,
        "steps": 1000,
        "lr": 0.1,
        "momentum": 0.99,
        "rules": ["bp", "fa", "dfa"],
    }
