"""Config for experiments/lectures/regularization.py: reproduces the verdict (L2/L1 RBF nets,
dropout and decay on digits); docs/lectures.md, section "Regularization".

    python experiments/lectures/regularization.py --config experiments/configs/lecture_regularization.py

Same run as `python experiments/lectures/regularization.py` (every option spelled out).
"""


def get_config():
    return {
        "sigma": 0.1,
        "rbf_steps": 5000,
        "rule": "bp",
        "seeds": 4,
        "steps": 2000,
        "n_train": 300,
        "width": 256,
        "dropout": 0.5,
        "decay": 0.1,
    }
