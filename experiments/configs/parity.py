"""Config for experiments/parity.py: reproduces the table of BP, FA and DFA on 30-bit 3-sparse
parity, 8 seeds; docs/main_job.md.

    python experiments/parity.py --config experiments/configs/parity.py

Same run as `python experiments/parity.py` (every option spelled out).
"""


def get_config():
    return {
        "n": 30,
        "k": 3,
        "rules": ["bp", "fa", "dfa"],
        "seeds": 8,
        "steps": 1500,
        "batch_size": 64,
        "width": 256,
        "depth": 2,
        "activation": "relu",
        "init": "he_uniform",
        "optimizer": "adam",
        "lr": 0.001,
        "loss": "bce",
        "feedback_scale": 1.0,
        "feedback_dist": "uniform",
        "feedback_scaling": "fan_in",
        "n_train": None,
        "data_seed": 0,
        "eval_every": 100,
        "diagnostics": False,
    }
