"""Config for experiments/alignment.py: reproduces the digits tables (test accuracy, angle to BP per
layer, weight alignment) and the parity angles; docs/alignment.md.

    python experiments/alignment.py --config experiments/configs/alignment.py

Same run as `python experiments/alignment.py` (every option spelled out).
"""


def get_config():
    return {
        "tasks": ["digits", "parity"],
        "rules": ["bp", "fa", "dfa"],
        "depth": 3,
        "width": 128,
        "activation": "tanh",
        "seeds": 4,
        "steps": 2000,
        "batch_size": 64,
        "lr": 0.001,
        "optimizer": "adam",
        "eval_every": 100,
        "parity_n": 16,
        "parity_k": 3,
        "feedback_scheme": None,
        "embed_layer": None,
        "embed_method": "tsne",
    }
