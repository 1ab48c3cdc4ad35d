"""Config for experiments/cnn_rules.py: reproduces the table (lecture_cnn, allconv, resnet20 with
batch norm, mlp; digits, 3 seeds, 600 steps); docs/cnn.md.

    python experiments/cnn_rules.py --config experiments/configs/cnn_rules.py

Same run as `python experiments/cnn_rules.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.dataset = "digits"
    config.models = ["lecture_cnn", "allconv", "resnet20", "mlp"]
    config.rules = ["bp", "fa", "dfa"]
    config.seeds = 3
    config.steps = 600
    config.batch_size = 32
    config.eval_every = 50
    config.optimizer = "adam"
    config.lr = 0.001
    config.width = 0.5
    config.padding = "SAME"
    config.resnet_depth = 20
    config.resnet_width = 4
    config.resnet_norm = "batch"
    config.resnet_groups = None  # the largest divisor of resnet_width up to 8
    config.mlp_hidden = [128, 128]
    config.augment = []
    config.crop = 1
    config.limit = None
    config.test_limit = None
    config.data_dir = None
    config.feedback_scale = 1.0
    config.feedback_dist = "uniform"
    config.feedback_scaling = "fan_in"
    config.preset = None
    config.diagnostics = False
    return config
