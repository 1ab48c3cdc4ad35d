"""A diverged seed stops: from its first non-finite loss on, its state no longer changes inside
the compiled program, the other seeds train on bit for bit as if it had not diverged, and its
metric rows are null with ``diverged: true``."""

import chex
import jax
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.training import step as step_lib
from fa_jax.training import sweep as sweep_lib

TASK = fj.data.parity(8, 2)
MODEL = fj.mlp([8, 32, 1])
X_VAL, Y_VAL = TASK.sample(jax.random.key(9), 64)
# seed 1 diverges at step 27 (its loss overflows), the others do not; one evaluation per step, with
# diagnostics and early stopping (patience 30: seed 1 would stop only after its divergence)
KW = {"rule": "bp", "seeds": [0, 1, 2], "lr": [1e-2, 30.0, 1e-2], "batch_size": 16, "optimizer": "sgd",
      "eval_every": 1, "diagnostics": True, "val": (X_VAL, Y_VAL), "early_stopping": 30, "progress": False}


@pytest.fixture(scope="module")
def runs():
    """(60 steps, the same run stopped at the divergence step d) — both one compiled program when
    d divides by 3 (20 evaluations of 3 per chunk)."""
    res = fj.sweep(MODEL, TASK, steps=60, **KW)
    d = int(res.diverged_at[1])
    return res, fj.sweep(MODEL, TASK, steps=d, **KW)


def _seed(tree, i):
    return jax.tree.map(lambda a: np.asarray(a[i]), tree)


def _frozen_part(state, i):
    return _seed({"params": state.params, "opt_state": state.opt_state, "model_state": state.model_state,
                  "feedback": state.feedback, "early": state.early}, i)


def test_a_diverged_seed_keeps_its_state_from_the_divergence_step(runs):
    res, before = runs  # before: the state that met the non-finite loss, after steps 0..d-1
    assert list(res.diverged) == [False, True, False] and not before.diverged.any()
    assert 5 < res.diverged_at[1] < 55
    chex.assert_trees_all_equal(_frozen_part(res.state, 1), _frozen_part(before.state, 1))
    assert np.isfinite(_seed(res.state.params, 1)[0]["w"]).all()
    for i in (0, 2):  # the healthy seeds went on training
        assert not np.array_equal(_seed(res.state.params, i)[0]["w"], _seed(before.state.params, i)[0]["w"])
    assert int(res.state.step[1]) == 60  # the step counter (and the key) still advance


def test_early_stopping_state_freezes_at_divergence(runs):
    res, before = runs
    assert before.stopped_at[1] == -1 and res.stopped_at[1] == -1  # no stale evaluations counted after it
    chex.assert_trees_all_equal(_seed(res.state.early, 1), _seed(before.state.early, 1))
    assert res.best_step[1] <= res.diverged_at[1]


def test_the_freeze_leaves_healthy_seeds_bit_identical(runs, monkeypatch):
    frozen, _ = runs
    monkeypatch.setattr(step_lib, "freeze_diverged", lambda new, old: new)  # the step without the freeze
    sweep_lib._programs.cache_clear()
    try:
        unfrozen = fj.sweep(MODEL, TASK, steps=60, **KW)
    finally:
        sweep_lib._programs.cache_clear()
    assert list(unfrozen.diverged) == [False, True, False]
    assert not np.isfinite(_seed(unfrozen.state.params, 1)[0]["w"]).all()
    for i in (0, 2):
        chex.assert_trees_all_equal(_seed(frozen.state.replace(key=None), i), _seed(unfrozen.state.replace(key=None), i))
        for f in ("loss", "train_acc", "test_loss", "test_acc", "val_loss"):
            np.testing.assert_array_equal(getattr(frozen, f)[i], getattr(unfrozen, f)[i], err_msg=f)
    np.testing.assert_array_equal(jax.random.key_data(frozen.state.key), jax.random.key_data(unfrozen.state.key))


def test_batch_norm_statistics_freeze_too():
    model = fj.norm_mlp([8, 32, 1], norm="batch")
    kw = {**KW, "lr": [1e-2, 1e30], "seeds": [0, 1], "diagnostics": False, "val": None, "early_stopping": None}
    res = fj.sweep(model, TASK, steps=20, **kw)  # 20 evaluations, one per chunk
    d = int(res.diverged_at[1])
    assert list(res.diverged) == [False, True] and d >= 1
    before = fj.sweep(model, TASK, steps=d, **kw)  # the same program
    chex.assert_trees_all_equal(_frozen_part(res.state, 1), _frozen_part(before.state, 1))
    assert np.isfinite(jax.tree.leaves(_seed(res.state.model_state, 1))).all()


def test_metric_rows_after_divergence_are_null_and_marked(runs):
    res, _ = runs
    d = int(res.diverged_at[1])
    rows = res.metric_rows()
    assert all(isinstance(r["diverged"], bool) for r in rows)
    assert not any(r["diverged"] for r in rows if r["seed"] != 1)
    mine = [r for r in rows if r["seed"] == 1]
    # the row of step t follows steps t-1 (0-based, eval_every=1): the first diverged one is d + 1
    assert [r["step"] for r in mine if r["diverged"]] == list(range(d + 1, 61))
    metrics = ("loss", "train_acc", "test_acc", "test_loss", *fj.diagnostics.KEYS)
    for r in mine:
        if r["diverged"]:
            assert all(r[k] is None for k in metrics), r
        else:
            assert r["test_acc"] is not None and r["loss"] is not None and r["grad_alignment_deg"] is not None
    expected = np.zeros((3, 60), bool)
    expected[1, d:] = True  # eval_steps 1..60: index j is step j + 1
    np.testing.assert_array_equal(res.diverged_mask, expected)
    np.testing.assert_array_equal(res.final_test_acc[[0, 2]], res.test_acc[[0, 2], -1])
    assert np.isnan(res.final_test_acc[1])
    assert res.rows()[1]["test_accuracy"] is None and res.rows()[1]["diverged_step"] == d


@pytest.mark.parametrize("rule,lr", [("local", 1e5), ("fg(kind=activity)", 30.0)])
def test_an_objective_rules_diverged_seed_freezes_with_its_extras(rule, lr):
    """local (heads in the params) and fg (a random direction per step): seed 1 diverges and keeps
    the state it had at the divergence step, heads included; the others train on."""
    kw = {"rule": rule, "seeds": [0, 1, 2], "lr": [1e-2, lr, 1e-2], "batch_size": 16, "optimizer": "sgd",
          "eval_every": 1, "progress": False}
    res = fj.sweep(MODEL, TASK, steps=30, **kw)
    d = int(res.diverged_at[1])
    assert list(res.diverged) == [False, True, False] and 0 < d < 30
    before = fj.sweep(MODEL, TASK, steps=d, **kw)
    chex.assert_trees_all_equal(_frozen_part(res.state, 1), _frozen_part(before.state, 1))
    assert np.isfinite(np.concatenate([np.ravel(a) for a in jax.tree.leaves(_seed(res.state.params, 1))])).all()
    if rule == "local":
        assert "head" in _seed(res.state.params, 1)[0]
    assert not np.array_equal(_seed(res.state.params, 0)[0]["w"], _seed(before.state.params, 0)[0]["w"])
