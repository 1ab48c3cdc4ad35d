"""Config for experiments/parity_study.py: reproduces the default-grid table (6 methods x n {10, 20,
30} x k {2, 3}, width 128, 4 seeds); docs/parity_study.md.

    python experiments/parity_study.py --config experiments/configs/parity_study.py

Same run as `python experiments/parity_study.py` (every option spelled out).
The values are the script's DEFAULT settings (its flags have no defaults of their own),
so this file beats --quick/--full/--preset: drop a key to let a preset set it.
"""


def get_config():
    return {
        "dataset": "parity",
        "distribution": "uniform",
        "methods": ["bp", "dfa", "ntk", "rf_gaussian", "rf_relu", "rf_linear"],
        "n": [10, 20, 30],
        "k": [2, 3],
        "width": [128],
        "seeds": 4,
        "steps": 8000,
        "epochs": None,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 0.001,
        "loss": None,
        "init": "he_uniform",
        "eval_every": 250,
        "preset": "default",
        "data_seed": 0,
        "data_dir": None,
        "offline": False,
    }
