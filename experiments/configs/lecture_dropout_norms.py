"""Config for experiments/lectures/dropout_norms.py: reproduces the verdict (dropout variants and
norm layers under bp and dfa on digits, 4 seeds); docs/lectures.md, section "Dropout variants and
norm layers".

    python experiments/lectures/dropout_norms.py --config experiments/configs/lecture_dropout_norms.py

Same run as `python experiments/lectures/dropout_norms.py` (every option spelled out).
"""


def get_config():
    return {
        "rules": ["bp", "dfa"],
        "dropouts": ["none", "bernoulli", "gaussian", "dropconnect", "standout"],
        "norms": ["batch", "layer", "instance", "group"],
        "seeds": 4,
        "steps": 2000,
        "lr": 0.001,
        "n_train": 500,
        "width": 256,
        "cnn_width": 0.5,
        "p": 0.5,
        "groups": 8,
    }
