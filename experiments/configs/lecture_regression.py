"""Config for experiments/lectures/regression.py: reproduces the verdict on diabetes (test RMSE, bp
vs dfa, 8 seeds); docs/lectures.md, section "Regression dataset".

    python experiments/lectures/regression.py --config experiments/configs/lecture_regression.py

Same run as `python experiments/lectures/regression.py --dataset diabetes` (every option spelled
out).
California housing (the script's default) is not cached here, so the published numbers
are from diabetes.
"""


def get_config():
    return {
        "dataset": "diabetes",
        "rules": ["bp", "dfa"],
        "seeds": 8,
        "steps": 3000,
        "width": 64,
        "lr": 0.001,
        "l2": 0.0,
    }
