"""Config for experiments/cnn_rules.py: reproduces the table (lecture_cnn, allconv, resnet20 with
batch norm, mlp; digits, 3 seeds, 600 steps); docs/cnn.md.

    python experiments/cnn_rules.py --config experiments/configs/cnn_rules.py

Same run as `python experiments/cnn_rules.py` (every option spelled out).
"""


def get_config():
    return {
        "dataset": "digits",
        "models": ["lecture_cnn", "allconv", "resnet20", "mlp"],
        "rules": ["bp", "fa", "dfa"],
        "seeds": 3,
        "steps": 600,
        "batch_size": 32,
        "eval_every": 50,
        "optimizer": "adam",
        "lr": 0.001,
        "width": 0.5,
        "padding": "SAME",
        "resnet_depth": 20,
        "resnet_width": 4,
        "resnet_norm": "batch",
        "resnet_groups": 8,
        "mlp_hidden": [128, 128],
        "augment": [],
        "crop": 1,
        "limit": None,
        "test_limit": None,
        "data_dir": None,
        "feedback_scale": 1.0,
        "feedback_dist": "uniform",
        "feedback_scaling": "fan_in",
        "preset": None,
        "diagnostics": False,
    }
