"""No recompilation across seeds, learning rates, or repeated calls with the same shapes."""

import fa_jax as fj
from fa_jax.training.compiles import count_compiles

TASK = fj.data.parity(8, 2)
MODEL = fj.mlp([8, 16, 1])
KW = dict(steps=40, batch_size=8, eval_every=20, progress=False, rule="dfa", optimizer="sgd")


def test_sweep_compiles_once_per_configuration():
    with count_compiles() as first:
        fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=0.1, **KW)
    assert first.count >= 1  # the counter sees compilations
    with count_compiles() as again:
        fj.sweep(MODEL, TASK, seeds=[5, 6, 7], lr=[0.01, 0.02, 0.03], **KW)  # other seeds and rates
        fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=0.1, **KW)                 # a repeat
    assert again.count == 0, f"{again.count} recompilations"
    with count_compiles() as other_shape:
        fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=0.1, **{**KW, "batch_size": 16})
    assert other_shape.count >= 1  # a new shape does compile (the counter is not blind)
