"""Config for experiments/lectures/batch_loop.py: reproduces the verdict (batched vs per-example
loop timing); docs/lectures.md, section "Batch vs loop".

    python experiments/lectures/batch_loop.py --config experiments/configs/lecture_batch_loop.py

Same run as `python experiments/lectures/batch_loop.py` (every option spelled out).
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.batch = 256
    config.width = 256
    config.repeats = 5
    config.rule = "bp"
    return config
