"""Config for experiments/parity_study.py: reproduces the table of Daniely & Malach's settings on
digits-parity with Adadelta lr 1.0 and 200 epochs; docs/parity_study.md.

    python experiments/parity_study.py --config experiments/configs/parity_study_paper_digits.py

Same run as `python experiments/parity_study.py --preset paper --dataset digits-parity --lr 1.0
--epochs 200`.
The other settings (k = n = 3 images, width 512, batch 128, hinge loss, Adadelta rho 0.95,
Glorot init, 2 seeds, methods bp, dfa, ntk, rf_gaussian, rf_relu) come from the `paper` preset.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.preset = "paper"
    config.dataset = "digits-parity"
    config.epochs = 200
    config.lr = 1.0
    return config
