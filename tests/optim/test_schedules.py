"""fa_jax.optim.schedules: every schedule equals optax's, SGDR restarts, reduce-on-plateau, bad settings."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fa_jax.optim import schedules

T = np.arange(0, 100)


@pytest.mark.parametrize("name,hyper,ref", [
    ("constant", {}, optax.constant_schedule(0.1)),
    ("step", {"every": 30, "factor": 0.5}, lambda t: 0.1 * 0.5 ** (t // 30)),
    ("exponential", {"decay_rate": 0.01}, optax.exponential_decay(0.1, 100, 0.01)),
    ("warmup_cosine", {"warmup": 10}, optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)),
    ("sgdr", {"cycles": 4}, optax.sgdr_schedule([{"init_value": 0.1, "peak_value": 0.1, "warmup_steps": 0,
                                                   "decay_steps": 25, "end_value": 0.0}] * 4)),
    ("one_cycle", {}, optax.cosine_onecycle_schedule(100, 0.1)),
])
def test_schedules_equal_optax(name, hyper, ref):
    assert set(schedules.SCHEDULES) == {"constant", "step", "exponential", "warmup_cosine", "sgdr", "one_cycle"}
    s = schedules.schedule(name, 0.1, 100, **hyper)
    np.testing.assert_allclose(np.asarray(jax.vmap(s)(T)), np.asarray(jax.vmap(ref)(T)), rtol=1e-5, atol=1e-8)


def test_sgdr_restarts_and_plot(tmp_path):
    s = schedules.schedule("sgdr", 0.1, 100, cycles=4)
    assert float(s(25)) == pytest.approx(0.1) and float(s(24)) < 0.01
    path = schedules.plot_schedule({n: schedules.schedule(n, 0.1, 100) for n in schedules.SCHEDULES}, 100,
                                   tmp_path / "s.png")
    assert path.stat().st_size > 1000


def test_reduce_on_plateau_scales_after_patience():
    tx = optax.chain(optax.sgd(1.0), schedules.reduce_on_plateau(factor=0.5, patience=3))
    p = jnp.ones(2)
    s = tx.init(p)
    scales = []
    for _ in range(8):
        u, s = tx.update(jnp.ones(2), s, p, value=jnp.asarray(1.0))  # the loss never improves
        scales.append(float(-u[0]))
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]  # x0.5 after every 3 flat updates


@pytest.mark.parametrize("bad,match", [
    (lambda: schedules.schedule("cosine_wobble", 0.1, 10), "unknown schedule 'cosine_wobble'"),
    (lambda: schedules.schedule("step", -0.1, 10), "-0.1"),
    (lambda: schedules.schedule("sgdr", 0.1, 10, cycles=0), "cycles"),
    (lambda: schedules.schedule("warmup_cosine", 0.1, 10, warmup=10), "warmup"),
])
def test_bad_schedule_settings_are_one_line_errors(bad, match):
    with pytest.raises(ValueError, match=match) as err:
        bad()
    assert "\n" not in str(err.value)
