"""Config for experiments/flax_models.py: reproduces the table of docs/flax_models.md (the bundled
linen examples mnist_cnn at width 0.5 and resnet with batch norm at width 8, stages 1,1,1, both
~20k params; bp, fa, dfa, kp, usf; digits, 3 seeds, 600 steps).

    python experiments/flax_models.py --config experiments/configs/flax_models.py

Same run as `python experiments/flax_models.py` (every option spelled out). Sizes are chosen for
a CPU: 4.9 minutes measured on 2 shared cores (10 sweeps; compile and init programs ~half).
"""


def get_config():
    return {
        "dataset": "digits",
        "models": ["mnist_cnn", "resnet"],
        "model": None,
        "rules": ["bp", "fa", "dfa", "kp", "usf"],
        "seeds": 3,
        "steps": 600,
        "batch_size": 32,
        "eval_every": 50,
        "optimizer": "adam",
        "lr": 0.001,
        "width": 0.5,
        "resnet_width": 8,
        "resnet_stages": [1, 1, 1],
        "limit": None,
        "test_limit": None,
        "data_dir": None,
        "feedback_scale": 1.0,
        "feedback_dist": "uniform",
        "feedback_scaling": "fan_in",
        "diagnostics": False,
    }
