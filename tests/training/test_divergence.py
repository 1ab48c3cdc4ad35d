"""A diverged seed stops: from its first non-finite loss on, its state no longer changes inside
the compiled program, the other seeds train on bit for bit as if it had not diverged, and its
metric rows are null with ``diverged: true``."""

import chex
import jax
import numpy as np

import fa_jax as fj
from fa_jax.training import step as step_lib
from fa_jax.training import sweep as sweep_lib

TASK = fj.data.parity(8, 2)
MODEL = fj.mlp([8, 32, 1])
KW = {"rule": "bp", "batch_size": 16, "optimizer": "sgd", "progress": False}
LRS = [1e-2, 30.0, 1e-2]  # seed 1 diverges at step 27 (its loss overflows), the others do not


def _seed(tree, i):
    return jax.tree.map(lambda a: np.asarray(a[i]), tree)


def _frozen_part(state, i):
    return _seed({"params": state.params, "opt_state": state.opt_state, "model_state": state.model_state,
                  "feedback": state.feedback, "early": state.early}, i)


def test_a_diverged_seed_keeps_its_state_from_the_divergence_step():
    res = fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=LRS, steps=60, eval_every=5, **KW)
    assert list(res.diverged) == [False, True, False]
    d = int(res.diverged_at[1])
    assert 5 < d < 55
    # the state that met the non-finite loss: after steps 0..d-1 (a run of d steps)
    before = fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=LRS, steps=d, eval_every=d, **KW)
    assert list(before.diverged) == [False, False, False]
    chex.assert_trees_all_equal(_frozen_part(res.state, 1), _frozen_part(before.state, 1))
    assert np.all(np.isfinite(jax.tree.leaves(_seed(res.state.params, 1))[0]))
    for i in (0, 2):  # the healthy seeds went on training
        assert not np.array_equal(_seed(res.state.params, i)[0]["w"], _seed(before.state.params, i)[0]["w"])
    assert int(res.state.step[1]) == 60  # the step counter (and the key) still advance


def test_the_freeze_leaves_healthy_seeds_bit_identical(monkeypatch):
    def run():
        return fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=[1e-2, 1e30, 1e-2], steps=40, eval_every=10, **KW)

    frozen = run()
    monkeypatch.setattr(step_lib, "freeze_diverged", lambda new, old: new)  # the step without the freeze
    sweep_lib._programs.cache_clear()
    try:
        unfrozen = run()
    finally:
        sweep_lib._programs.cache_clear()
    assert list(frozen.diverged) == list(unfrozen.diverged) == [False, True, False]
    assert not np.isfinite(jax.tree.leaves(_seed(unfrozen.state.params, 1))[0]).all()
    for i in (0, 2):
        chex.assert_trees_all_equal(_seed(frozen.state.replace(key=None), i), _seed(unfrozen.state.replace(key=None), i))
        np.testing.assert_array_equal(jax.random.key_data(frozen.state.key), jax.random.key_data(unfrozen.state.key))
        for f in ("loss", "train_acc", "test_loss", "test_acc"):
            np.testing.assert_array_equal(getattr(frozen, f)[i], getattr(unfrozen, f)[i], err_msg=f)


def test_batch_norm_statistics_freeze_too():
    model = fj.norm_mlp([8, 32, 1], norm="batch")
    res = fj.sweep(model, TASK, seeds=[0, 1], lr=[1e-2, 1e30], steps=20, eval_every=5, **KW)
    d = int(res.diverged_at[1])
    assert list(res.diverged) == [False, True] and d >= 1
    before = fj.sweep(model, TASK, seeds=[0, 1], lr=[1e-2, 1e30], steps=d, eval_every=d, **KW)
    chex.assert_trees_all_equal(_frozen_part(res.state, 1), _frozen_part(before.state, 1))
    assert np.isfinite(jax.tree.leaves(_seed(res.state.model_state, 1))).all()


def test_early_stopping_state_freezes_at_divergence():
    x_val, y_val = TASK.sample(jax.random.key(9), 64)
    es = {"val": (x_val, y_val), "early_stopping": 6, "eval_every": 5, "seeds": [0, 1, 2], "lr": LRS, **KW}
    res = fj.sweep(MODEL, TASK, steps=60, **es)
    d = int(res.diverged_at[1])
    last = d // 5 * 5  # the last evaluation before the divergence
    before = fj.sweep(MODEL, TASK, steps=last, **es)
    chex.assert_trees_all_equal(_seed(res.state.early, 1), _seed(before.state.early, 1))
    assert res.stopped_at[1] == -1  # no more stale evaluations counted after the divergence
    assert res.best_step[1] <= last

