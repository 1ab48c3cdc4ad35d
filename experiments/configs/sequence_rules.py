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


def get_config():
    return {
        "tasks": ["lm", "recall", "modadd"],
        "models": ["transformer", "gru"],
        "rules": ["bp", "fa", "dfa", "kp", "usf"],
        "points": ["macro", "micro"],
        "error_at": "logits",
        "seeds": 3,
        "steps": None,
        "batch_size": None,
        "eval_every": 100,
        "optimizer": "adamw",
        "lr": 0.001,
        "weight_decay": None,
        "d_model": 64,
        "n_heads": 4,
        "n_blocks": 2,
        "d_hidden": 128,
        "context": 64,
        "recall_pairs": 4,
        "recall_keys": 8,
        "recall_values": 8,
        "modulus": 31,
        "train_fraction": 0.5,
        "feedback_scale": 1.0,
        "feedback_dist": "uniform",
        "feedback_scaling": "fan_in",
        "diagnostics": True,
        "samples": 200,
    }
