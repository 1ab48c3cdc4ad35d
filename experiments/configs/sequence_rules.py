"""Config for experiments/sequence_rules.py: reproduces the tables of docs/sequence_rules.md (bp, fa,
dfa, kp, usf on a 2-block transformer LM, d_model 64, 4 heads, DFA points macro and micro, and
on a GRU with 128 hidden units; character LM on the pydoc text with windows of 64, associative
recall with 4 pairs of 8 keys and 8 values, modular addition mod 31 on half the pairs; 3 seeds;
AdamW 1e-3; per task 1000 / 1500 / 2000 steps, batch 32 / 64 / 64, weight decay 0 / 0 / 1
(steps, batch_size, weight_decay None: per task); per-block alignment).

    python experiments/sequence_rules.py --config experiments/configs/sequence_rules.py

Same run as `python experiments/sequence_rules.py` (every option spelled out): 33 sweeps, 1,429 s
(24 min) measured on 2 shared CPU cores.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.tasks = ["lm", "recall", "modadd"]
    config.models = ["transformer", "gru"]
    config.rules = ["bp", "fa", "dfa", "kp", "usf"]
    config.points = ["macro", "micro"]
    config.error_at = "logits"
    config.seeds = 3
    config.steps = None
    config.batch_size = None
    config.eval_every = 100
    config.optimizer = "adamw"
    config.lr = 0.001
    config.weight_decay = None
    config.d_model = 64
    config.n_heads = 4
    config.n_blocks = 2
    config.d_hidden = 128
    config.context = 64
    config.recall_pairs = 4
    config.recall_keys = 8
    config.recall_values = 8
    config.modulus = 31
    config.train_fraction = 0.5
    config.feedback_scale = 1.0
    config.feedback_dist = "uniform"
    config.feedback_scaling = "fan_in"
    config.diagnostics = True
    config.samples = 200
    return config
