"""Kolen-Pollack (its FA gradients at the current B: tests/rules/test_rules.py): BP when started at
B = W without decay, the geometric decay of B - W through the train step, rule options, sweeps and
a checkpoint round trip."""

import jax
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.training.state import init_state

TASK = fj.data.parity(8, 2)


def test_started_at_B_equal_W_without_decay_it_is_bp_at_every_step():
    model = fj.mlp([8, 16, 16, 1])
    kw = dict(seeds=2, steps=12, batch_size=16, eval_every=1, progress=False)
    kp = fj.sweep(model, TASK, rule="kp(lam=1; b0=w)", **kw)
    bp = fj.sweep(model, TASK, rule="bp", **kw)
    for f in ("loss", "test_loss"):
        np.testing.assert_allclose(getattr(kp, f), getattr(bp, f), rtol=1e-5, atol=1e-7, err_msg=f)
    for a, b in zip(jax.tree.leaves(kp.state.params), jax.tree.leaves(bp.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for p, B in zip(kp.state.params, kp.state.feedback):
        np.testing.assert_array_equal(p["w"], B)


def test_decay_shrinks_B_minus_W_by_lam_every_step(keys):
    lam, model = 0.9, fj.mlp([8, 16, 16, 1])
    tx = fj.optimizer("adam", 1e-2)
    step = jax.jit(fj.make_train_step(model, f"kp(lam={lam})", fj.losses.bce, tx, 16))
    state = init_state(keys(1)[0], model, f"kp(lam={lam})", tx)

    def gaps(s):
        return np.array([np.linalg.norm(np.asarray(B, np.float64) - np.asarray(p["w"], np.float64))
                         for p, B in zip(s.params, s.feedback)])

    g0 = gaps(state)
    for t in range(1, 6):
        state, _ = step(state, TASK)
        np.testing.assert_allclose(gaps(state), lam ** t * g0, rtol=1e-4)


def test_options_and_their_errors():
    assert fj.rules.parse_spec("kp(lam=0.5; b0=w)") == ("kp", {"lam": 0.5, "b0": "w"})
    assert fj.rules.get("kp(lam=0.5, b0=w)").name == "kp(b0=w;lam=0.5)"  # its normal form
    assert "lam=0.999" in fj.RULES["kp"].doc
    one_line_error(lambda: fj.rules.get("kp(lam=1.5)"), "kp: lam must be in (0, 1], got 1.5")
    one_line_error(lambda: fj.rules.get("kp(b0=zero)"), "unknown kp option b0 'zero'; known: random, w")
    one_line_error(lambda: fj.rules.get("kp(mu=1)"), "rule 'kp' has no option 'mu'; its options: lam, b0")
    one_line_error(lambda: fj.rules.get("kp(lam)"), "options are written key=value, got 'lam'")
    one_line_error(lambda: fj.rules.get("fa(lam=1)"), "rule 'fa' takes no options")
    one_line_error(lambda: fj.rules.get("kpp(lam=1)"), "unknown rule 'kpp'")


@pytest.mark.parametrize("model", [fj.mlp([8, 16, 16, 1]), fj.norm_mlp([8, 16, 16, 1], norm="batch")],
                         ids=["mlp", "norm_mlp"])
def test_sweeps_evolve_the_feedback(model):
    res = fj.sweep(model, TASK, rule="kp", seeds=2, steps=20, batch_size=16, eval_every=10, progress=False,
                   diagnostics=not fj.models.contract.is_stateful(model))
    assert np.isfinite(res.loss).all()
    start = init_state(jax.random.key(0), model, "kp", fj.optimizer("adam", 1e-3))
    assert not np.allclose(res.state.feedback[1][0], start.feedback[1])


def test_a_checkpoint_holds_the_evolved_feedback(tmp_path):
    model = fj.mlp([8, 16, 1])
    kw = dict(rule="kp(lam=0.99)", seeds=2, steps=20, batch_size=16, eval_every=10, progress=False,
              checkpoint=str(tmp_path / "ck"))
    first = fj.sweep(model, TASK, **kw)
    again = fj.sweep(model, TASK, **kw)  # restored from the final checkpoint
    assert again.resumed_from == 20
    for a, b in zip(first.state.feedback, again.state.feedback):
        np.testing.assert_array_equal(a, b)
