"""Config for experiments/feedback_schemes.py: reproduces the table of FA and DFA under each
feedback scheme on digits and parity; docs/alignment.md, section "Feedback schemes".

    python experiments/feedback_schemes.py --config experiments/configs/feedback_schemes.py

Same run as `python experiments/feedback_schemes.py` (every option spelled out).
"""


def get_config():
    return {
        "tasks": ["digits", "parity"],
        "rules": ["fa", "dfa"],
        "schemes": ["default", "nokland_dfa", "nokland_fa", "xavier", "akrout", "tinydfa"],
        "depth": 2,
        "width": 128,
        "activation": "tanh",
        "seeds": 4,
        "steps": 1000,
        "batch_size": 64,
        "lr": 0.001,
        "optimizer": "adam",
        "eval_every": 100,
        "parity_n": 16,
        "parity_k": 3,
    }
