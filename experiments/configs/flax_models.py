"""Config for experiments/flax_models.py: reproduces the table of docs/flax_models.md (the bundled
linen examples mnist_cnn at width 0.5 and resnet with batch norm at width 8, stages 1,1,1, both
~20k params; bp, fa, dfa, kp, usf; digits, 3 seeds, 600 steps).

    python experiments/flax_models.py --config experiments/configs/flax_models.py

Same run as `python experiments/flax_models.py` (every option spelled out). Sizes are chosen for
a CPU: 4.9 minutes measured on 2 shared cores (10 sweeps; compile and init programs ~half).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.dataset = "digits"
    config.models = ["mnist_cnn", "resnet"]
    config.model = None
    config.rules = ["bp", "fa", "dfa", "kp", "usf"]
    config.seeds = 3
    config.steps = 600
    config.batch_size = 32
    config.eval_every = 50
    config.optimizer = "adam"
    config.lr = 0.001
    config.width = 0.5
    config.resnet_width = 8
    config.resnet_stages = [1, 1, 1]
    config.limit = None
    config.test_limit = None
    config.data_dir = None
    config.feedback_scale = 1.0
    config.feedback_dist = "uniform"
    config.feedback_scaling = "fan_in"
    config.diagnostics = False
    return config
