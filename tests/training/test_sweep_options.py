"""Toolbox options of fj.sweep: early stopping keeps exactly the params an early-stopped run
returns; label smoothing is optax's formula wired into the training loss; reduce-on-plateau
sees every step's loss; bad settings are one-line errors; clipping, penalties, decoupled decay and
max-norm compose with fj.sweep under every rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax

import fa_jax as fj
from fa_jax import losses
from fa_jax.training.early_stopping import split_validation, update_early
from fa_jax.training.state import PURPOSE_INIT


@pytest.fixture(scope="module")
def small_digits():
    task = fj.data.digits()
    task = task.replace(x_train=task.x_train[:200], y_train=task.y_train[:200])
    return split_validation(task, 100, jax.random.key(0))


def test_best_params_equal_a_run_stopped_at_best_step(small_digits):
    tr, val = small_digits
    model, kw = fj.mlp([64, 32, 10]), dict(rule="dfa", eval_every=10, lr=3e-2, batch_size=16, progress=False)
    res = fj.sweep(model, tr, seeds=2, steps=120, early_stopping=2, val=val, **kw)
    assert res.val_loss.shape == (2, 12) and res.best_step.shape == (2,)
    for i in range(2):  # the kept step is the validation minimum up to where patience ran out
        stop = res.stopped_at[i]
        upto = res.eval_steps <= (stop if stop >= 0 else res.eval_steps[-1])
        assert res.best_step[i] == res.eval_steps[upto][res.val_loss[i][upto].argmin()]
        if stop >= 0:
            assert stop == res.best_step[i] + 2 * 10
    assert (res.stopped_at >= 0).any() and (res.best_step < 120).any()  # the case exercises stopping
    i = int(np.argmin(res.best_step))
    short = fj.sweep(model, tr, seeds=[i], steps=int(res.best_step[i]), **kw)
    best_i = jax.tree.map(lambda a: a[i], res.best_params)
    short_p = jax.tree.map(lambda a: a[0], short.state.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), best_i, short_p)


def test_update_early_keeps_minimum_ignores_nan_and_freezes_after_stop():
    e = fj.early_stopping.init_early(jnp.zeros(2))
    seq = [(1, 3.0), (2, 2.0), (3, jnp.nan), (4, 2.5), (5, 1.0)]  # stops at 4 (patience 2): 1.0 never kept
    for step, v in seq:
        e = update_early(e, jnp.full(2, float(step)), jnp.int32(step), jnp.float32(v), 2)
    assert int(e["step"]) == 2 and float(e["val_loss"]) == 2.0 and int(e["stopped_at"]) == 4
    np.testing.assert_array_equal(e["params"], [2.0, 2.0])


def test_label_smoothing_matches_hand_formula_and_is_the_sweeps_training_loss(x64):
    logits = jax.random.normal(jax.random.key(1), (5, 4), jnp.float64)
    y = jnp.array([0, 3, 1, 1, 2])
    t = (1 - 0.2) * np.eye(4)[np.asarray(y)] + 0.2 / 4
    logp = np.asarray(logits) - np.log(np.exp(np.asarray(logits)).sum(-1, keepdims=True))
    ref = -(t * logp).sum(-1).mean()
    np.testing.assert_allclose(losses.smoothed(losses.softmax_ce, 0.2)(logits, y), ref, rtol=1e-12)

    task = fj.data.digits()
    task = task.replace(x_train=task.x_train[:20], y_train=task.y_train[:20])  # batch 64 >= 20: full batch
    model = fj.mlp([64, 8, 10])
    res = fj.sweep(model, task, seeds=1, steps=1, eval_every=1, batch_size=64, label_smoothing=0.2, progress=False)
    p0 = model.init(jax.random.fold_in(jax.random.key(0), PURPOSE_INIT))
    z = np.asarray(model.apply(p0, task.x_train), np.float64)
    t = 0.8 * np.eye(10)[np.asarray(task.y_train)] + 0.02
    ref = -(t * (z - np.log(np.exp(z).sum(-1, keepdims=True)))).sum(-1).mean()
    np.testing.assert_allclose(res.loss[0, 0], ref, rtol=1e-5)


@pytest.mark.parametrize("kw,match", [
    ({"early_stopping": 0}, "early_stopping must be None or a positive int (evaluations of patience), got 0"),
    ({"early_stopping": 3}, "early_stopping=patience and val=(x_val, y_val) go together; got early_stopping=3"),
    ({"early_stopping": 3, "val": (np.zeros((4, 3)), np.zeros(4))}, "val must be x_val (n >= 1, 64) and y_val"),
    ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1), got 1.0"),
    ({"label_smoothing": -0.1}, "label_smoothing must be in [0, 1), got -0.1"),
])
def test_bad_settings_are_one_line_errors(kw, match):
    with pytest.raises(ValueError) as err:
        fj.sweep(fj.mlp([64, 8, 10]), fj.data.digits(), steps=10, eval_every=10, **kw)
    assert match in str(err.value) and "\n" not in str(err.value)


def test_label_smoothing_needs_classes_and_split_needs_room():
    with pytest.raises(ValueError, match=r"label_smoothing=0.1 needs >= 2 outputs \(classes\); this task has 1"):
        fj.sweep(fj.mlp([64, 8, 1]), fj.data.digits("parity"), steps=10, eval_every=10, label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"n_val must be an int in \[1, 1348\), got 1348"):
        split_validation(fj.data.digits(), 1348, jax.random.key(0))


def test_reduce_on_plateau_in_sweep_sees_every_steps_loss():
    task = fj.data.digits()
    res = fj.sweep(fj.mlp([64, 8, 10]), task, seeds=1, steps=8, eval_every=1, optimizer="sgd", lr=1e-7,
                   optimizer_hyper={"plateau_patience": 2, "plateau_factor": 0.5}, progress=False)
    ref = optax.contrib.reduce_on_plateau(patience=2, factor=0.5)  # replay optax on the recorded batch losses
    s = ref.init(None)
    for v in res.loss[0]:
        _, s = ref.update(jnp.zeros(()), s, value=jnp.float32(v))
    scale = optax.tree_utils.tree_get(res.state.opt_state, "scale")
    assert float(s.scale) < 1.0
    np.testing.assert_allclose(scale[0], s.scale)
    with pytest.raises(ValueError, match="plateau_factor must be in \\(0, 1\\), got 1.5"):
        fj.optimizer("sgd", 0.1, plateau_patience=2, plateau_factor=1.5)


def test_toolbox_composes_with_sweep_for_every_rule():
    task = fj.data.parity(8, 2, n_train=64, n_test=64)
    model = fj.mlp([8, 16, 1])
    for rule in ("bp", "fa", "dfa"):
        res = fj.sweep(model, task, rule=rule, seeds=2, steps=20, eval_every=10, optimizer="sgd", lr=0.05,
                       optimizer_hyper={"clip_norm": 1.0, "l2": 1e-3, "decoupled_decay": 1e-2, "max_norm": 3.0},
                       progress=False)
        assert np.isfinite(res.loss).all()
        w = np.asarray(res.state.params[0]["w"])  # (seeds, 8, 16)
        assert np.linalg.norm(w, axis=1).max() <= 3.0 + 1e-5
