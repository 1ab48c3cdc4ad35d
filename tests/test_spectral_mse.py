"""fa_jax.losses.spectral_mse against numpy's rfft in float64, its phase blindness (a circularly
shifted target costs 0 while MSE does not), a finite gradient at all-zero logits, the one-line
errors (in the loss and in fj.sweep's task check); fa_jax.data.phase_shift checked by numpy, and
fj.sweep with loss="spectral_mse" under bp, fa and dfa."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj

RNG = np.random.default_rng(0)
Z = RNG.normal(size=(5, 16))
Y = RNG.normal(size=(5, 16))


def _np_spectral_mse(z, y):
    """Eq. (4.17): (1/K) sum_k (|Z_k| - |Y_k|)^2 over the K = T // 2 + 1 rfft bins, mean over the batch."""
    dz, dy = np.abs(np.fft.rfft(z, axis=-1)), np.abs(np.fft.rfft(y, axis=-1))
    k = z.shape[-1] // 2 + 1
    return np.mean(((dz - dy) ** 2).sum(-1) / k)


@pytest.mark.parametrize("t", [16, 15])  # even and odd lengths: K = 9 and 8 bins
def test_spectral_mse_is_numpys_rfft_formula(x64, t):
    z, y = Z[:, :t], Y[:, :t]
    got = fj.losses.get("spectral_mse")(jnp.asarray(z), jnp.asarray(y))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(float(got), _np_spectral_mse(z, y), rtol=1e-12)


def test_gradient_matches_numpy_finite_differences(x64):
    g = np.asarray(jax.grad(fj.losses.spectral_mse)(jnp.asarray(Z), jnp.asarray(Y)))
    eps, fd = 1e-6, np.zeros_like(Z)
    for idx in np.ndindex(Z.shape):
        d = np.zeros_like(Z)
        d[idx] = eps
        fd[idx] = (_np_spectral_mse(Z + d, Y) - _np_spectral_mse(Z - d, Y)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_circular_shift_of_the_target_costs_nothing_but_mse_sees_it(x64):
    y = jnp.asarray(Y)
    shifted = jnp.roll(y, 5, axis=-1)
    assert float(fj.losses.spectral_mse(shifted, y)) == pytest.approx(0.0, abs=1e-20)
    assert float(fj.losses.mse(shifted, y)) > 1.0


@pytest.mark.parametrize("target", ["zeros", "random"])
def test_gradient_is_finite_at_zero_logits(target):
    y = jnp.zeros((3, 8)) if target == "zeros" else jnp.asarray(Y[:3, :8], jnp.float32)
    g = jax.grad(fj.losses.spectral_mse)(jnp.zeros((3, 8)), y)
    assert bool(jnp.isfinite(g).all())
    if target == "zeros":
        np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("z,y,match", [
    (np.zeros((4, 8)), np.zeros((4, 6)), r"spectral_mse needs targets of the logits' shape \(4, 8\) \(batch, T\); "
                                         r"got targets of shape \(4, 6\)"),
    (np.zeros((4, 8)), np.zeros(4, np.int32), r"needs real-valued \(float\) targets of the logits' shape \(4, 8\); "
                                              r"got int32 labels of shape \(4,\)"),
    (np.zeros(8), np.zeros(8), r"spectral_mse needs logits \(batch, T\), got shape \(8,\)"),
])
def test_bad_inputs_are_one_line_errors(z, y, match):
    with pytest.raises(ValueError, match=match) as err:
        fj.losses.spectral_mse(jnp.asarray(z), jnp.asarray(y))
    assert "\n" not in str(err.value)


def test_sweep_refuses_class_labels_before_compiling():
    with pytest.raises(ValueError, match=r"task 'digits-class': y_test: spectral_mse needs real-valued \(float\) targets of "
                                         r"the logits' shape \(\d+, 10\); got int32 labels"):
        fj.sweep(fj.mlp([64, 10]), fj.data.digits(), loss="spectral_mse", seeds=1, steps=1, eval_every=1)


def test_phase_shift_task_matches_numpy():
    task = fj.data.phase_shift(32, 2, 5, 0.3, 0.7, 64, test_seed=3)
    x, y, clean = (np.asarray(a, np.float64) for a in (task.x_test, task.y_test, task.aux["clean_test"]))
    assert x.shape == y.shape == clean.shape == (64, 32) and task.x_test.dtype == jnp.float32
    assert (task.n_in, task.n_out, task.default_loss) == (32, 32, "mse")
    # the target is the clean input with every component's phase advanced by 0.7: in the DFT,
    # each bin of a sum of sin(2 pi f n / T + phi) with f in 1..5 is multiplied by exp(+-0.7 i)
    cx, cy = np.fft.rfft(clean, axis=-1), np.fft.rfft(y, axis=-1)
    np.testing.assert_allclose(cy[:, 1:6], cx[:, 1:6] * np.exp(0.7j), atol=1e-3)
    np.testing.assert_allclose(cy[:, [0, *range(6, 17)]], 0, atol=1e-3)
    noise = x - clean
    assert abs(noise.std() - 0.3) < 0.02 and abs(noise.mean()) < 0.02
    xb, yb = task.sample(jax.random.key(1), 7)
    assert xb.shape == yb.shape == (7, 32)


@pytest.mark.parametrize("kw,match", [
    ({"t": 3}, "phase_shift t=3 is too short"),
    ({"max_freq": 32}, r"phase_shift max_freq=32 must be below the Nyquist frequency t/2 = 32"),
    ({"noise": -1.0}, "phase_shift noise must be"),
    ({"shift": math.inf}, "phase_shift shift must be a finite number"),
    ({"n_components": 0}, "phase_shift n_components must be a positive int, got 0"),
])
def test_phase_shift_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        fj.data.phase_shift(**kw)


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa"])
def test_sweep_trains_on_spectral_mse_under_every_rule(rule):
    task = fj.data.phase_shift(16, 2, 4, 0.1, n_test=64)
    res = fj.sweep(fj.mlp([16, 32, 16]), task, rule=rule, loss="spectral_mse", seeds=2, steps=60, batch_size=32,
                   optimizer="adam", lr=3e-3, eval_every=20, progress=False)
    assert np.isfinite(res.test_loss).all() and not res.diverged.any()
    assert (res.test_loss[:, -1] < 0.7 * res.test_loss[:, 0]).all()
