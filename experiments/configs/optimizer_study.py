"""Config for experiments/optimizer_study.py: reproduces the table of the best learning rate per
dataset, rule and optimizer; docs/optimizer_study.md.

    python experiments/optimizer_study.py --config experiments/configs/optimizer_study.py

Same run as `python experiments/optimizer_study.py` (every option spelled out).
The values are the script's DEFAULT settings (its flags have no defaults of their own),
so this file beats --quick: drop a key to let --quick set it.
"""


def get_config():
    return {
        "datasets": ["parity", "digits-parity"],
        "rules": ["bp", "dfa"],
        "optimizers": ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw", "nadam"],
        "lr_factors": [1 / 3, 1.0, 3.0],
        "seeds": 2,
        "steps": 2000,
        "batch_size": 64,
        "width": 128,
        "depth": 1,
        "eval_every": 100,
    }
