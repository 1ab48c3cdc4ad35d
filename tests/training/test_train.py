"""Sweeps: vmapped seeds equal single-seed runs, per-seed learning rates, divergence, errors."""

import jax
import numpy as np
import pytest

import fa_jax as fj

TASK = fj.data.parity(8, 2)
MODEL = fj.mlp([8, 32, 1])
KW = dict(steps=60, batch_size=16, eval_every=20, progress=False)


def _same(a, b, rtol=1e-5, atol=1e-6):
    for f in ("loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=rtol, atol=atol, err_msg=f)


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa"])
def test_sweep_equals_each_seed_alone(rule):
    many = fj.sweep(MODEL, TASK, rule=rule, seeds=[0, 1, 2], **KW)
    assert many.test_acc.shape == (3, 3) and list(many.eval_steps) == [20, 40, 60]
    for i, s in enumerate([0, 1, 2]):
        one = fj.sweep(MODEL, TASK, rule=rule, seeds=[s], **KW)
        for f in ("loss", "test_acc", "test_loss"):
            np.testing.assert_allclose(getattr(many, f)[i], getattr(one, f)[0], rtol=1e-5, atol=1e-6)
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x: x[i], many.state.params)),
                        jax.tree.leaves(jax.tree.map(lambda x: x[0], one.state.params))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_adding_seeds_keeps_earlier_ones():
    """Seeds 0-3 of an 8-seed sweep equal a 4-seed sweep: every random draw (feedback, batches)
    bit for bit; the trajectories to float32 rounding (XLA blocks a batched matmul differently
    for 4 and 8 seeds, so low bits may differ; the same seed count is bit-identical)."""
    four = fj.sweep(MODEL, TASK, rule="dfa", seeds=4, **KW)
    eight = fj.sweep(MODEL, TASK, rule="dfa", seeds=8, **KW)
    for a, b in zip(jax.tree.leaves(four.state.feedback), jax.tree.leaves(eight.state.feedback)):
        np.testing.assert_array_equal(a, b[:4])
    np.testing.assert_array_equal(jax.random.key_data(four.state.key), jax.random.key_data(eight.state.key)[:4])
    for f in ("loss", "test_acc"):
        np.testing.assert_allclose(getattr(eight, f)[:4], getattr(four, f), rtol=1e-5, atol=1e-6)
    again = fj.sweep(MODEL, TASK, rule="dfa", seeds=[0, 1, 2, 3], **KW)
    for a, b in zip(jax.tree.leaves(four.state.params), jax.tree.leaves(again.state.params)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(eight.loss[0], eight.loss[1])  # seeds differ


def test_per_seed_learning_rate_equals_separate_runs():
    both = fj.sweep(MODEL, TASK, seeds=[3, 3 + 1], lr=[1e-3, 3e-2], optimizer="sgd", **KW)
    a = fj.sweep(MODEL, TASK, seeds=[3], lr=1e-3, optimizer="sgd", **KW)
    b = fj.sweep(MODEL, TASK, seeds=[4], lr=3e-2, optimizer="sgd", **KW)
    np.testing.assert_allclose(both.loss[0], a.loss[0], rtol=1e-5)
    np.testing.assert_allclose(both.loss[1], b.loss[0], rtol=1e-5)


def test_divergence_is_reported_per_seed_and_others_unaffected():
    res = fj.sweep(MODEL, TASK, seeds=[0, 1], lr=[1e-3, 1e30], optimizer="sgd", **KW)
    assert list(res.diverged) == [False, True]
    assert 0 <= res.diverged_at[1] < 60
    rows = res.rows()
    assert rows[1]["test_accuracy"] is None and rows[1]["diverged"] and rows[1]["diverged_step"] == int(res.diverged_at[1])
    assert rows[0]["test_accuracy"] is not None and not rows[0]["diverged"]
    assert np.isnan(res.final_test_acc[1])
    alone = fj.sweep(MODEL, TASK, seeds=[0], lr=1e-3, optimizer="sgd", **KW)
    np.testing.assert_allclose(res.loss[0], alone.loss[0], rtol=1e-5)
    summary = fj.tables.summarize(rows)
    assert summary[0]["diverged"] == 1 and summary[0]["seeds"] == 2


def test_bp_learns_parity_and_metrics_rows():
    res = fj.sweep(fj.mlp([10, 64, 64, 1]), fj.data.parity(10, 2), rule="bp", seeds=2, steps=400,
                   batch_size=64, eval_every=100, progress=False)
    assert res.final_test_acc.min() >= 0.95
    rows = res.metric_rows()
    assert len(rows) == 2 * 4 and set(rows[0]) == {"rule", "seed", "step", "diverged", "loss", "train_acc", "test_acc",
                                                "test_loss"}


def test_digits_classification_trains_under_dfa():
    res = fj.sweep(fj.mlp([64, 64, 10]), fj.data.digits(), rule="dfa", seeds=2, steps=300,
                   batch_size=64, eval_every=100, progress=False)
    assert res.final_test_acc.min() > 0.85


@pytest.mark.parametrize("kw,match", [
    (dict(rule="xx"), "unknown rule 'xx'"),
    (dict(optimizer="adamm"), "unknown optimizer 'adamm'"),
    (dict(loss="xent"), "unknown loss 'xent'"),
    (dict(loss="softmax_ce"), "needs >= 2 outputs"),
    (dict(steps=0), "steps must be a positive int, got 0"),
    (dict(batch_size=-3), "batch_size must be a positive int, got -3"),
    (dict(steps=50, eval_every=20), "steps=50 is not a multiple of eval_every=20"),
    (dict(seeds=0), "seeds must be >= 1"),
    (dict(seeds=[1, 1]), "duplicates"),
    (dict(lr=[0.1, 0.2], seeds=3), "got 2 learning rates for 3 seeds"),
    (dict(lr=-1.0), "learning rate must be positive"),
    (dict(feedback={"dist": "cauchy"}), "unknown feedback dist 'cauchy'"),
    (dict(feedback={"scale": 0}), "feedback scale must be a positive"),
])
def test_bad_sweep_input(kw, match):
    args = {**KW, **kw}
    with pytest.raises(ValueError, match=match):
        fj.sweep(MODEL, TASK, **args)


def test_model_task_mismatch():
    with pytest.raises(ValueError, match=r"model is 5->1 but task 'parity\(n=8,k=2\)' is 8->1"):
        fj.sweep(fj.mlp([5, 3, 1]), TASK, **KW)


def test_bad_model_sizes():
    with pytest.raises(ValueError, match=r"positive ints, got 0"):
        fj.mlp([4, 0, 1])
    with pytest.raises(ValueError, match="at least"):
        fj.mlp([4])
