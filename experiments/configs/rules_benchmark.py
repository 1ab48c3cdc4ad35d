"""Config for experiments/rules_benchmark.py: reproduces the table of every rule on parity, digits
(MLP, lecture conv net, all-conv net) and mnist5k (lecture conv net); docs/rules_benchmark.md.

    python experiments/rules_benchmark.py --config experiments/configs/rules_benchmark.py

Same run as `python experiments/rules_benchmark.py` (every option spelled out).
The values are the script's DEFAULT settings (its flags have no defaults of their own),
so this file beats --quick: drop a key to let --quick set it.
"""


def get_config():
    return {
        "tasks": ["parity", "digits-mlp", "digits-lecture_cnn", "digits-allconv", "mnist5k-lecture_cnn"],
        "rules": ["bp", "fa", "dfa", "usf", "frsf", "brsf", "kp", "wm", "sdfa", "drtp", "pepita"],
        "lrs": [3e-4, 1e-3, 3e-3],
        "seeds": 4,
        "steps": None,
        "eval_every": None,
        "batch_size": 32,
        "optimizer": "adam",
        "scale": 1.0,
        "diagnostics": True,
    }
