"""Config for experiments/lectures/batch_loop.py: reproduces the verdict (batched vs per-example
loop timing); docs/lectures.md, section "Batch vs loop".

    python experiments/lectures/batch_loop.py --config experiments/configs/lecture_batch_loop.py

Same run as `python experiments/lectures/batch_loop.py` (every option spelled out).
"""


def get_config():
    return {
        "batch": 256,
        "width": 256,
        "repeats": 5,
        "rule": "bp",
    }
