"""1-D signal regression: noisy sums of sinusoids in, the clean signal phase-shifted out.

One example (T samples, n = 0..T-1) has ``n_components`` sinusoids, each with an amplitude
``a ~ U(0.5, 1.5)``, an integer frequency ``f ~ U{1..max_freq}`` (cycles per window, repeats
allowed, so every component is periodic on the window) and a phase ``phi ~ U(0, 2 pi)``:

    x[n] = sum_c a_c sin(2 pi f_c n / T + phi_c) + noise * N(0, 1)         (input, noisy)
    y[n] = sum_c a_c sin(2 pi f_c n / T + phi_c + shift)                   (target, clean)

``shift`` is one phase added to every component (pi / 2 turns each sine into a cosine: the
target is the quadrature of the clean input). The map from clean input to target is linear and
leaves every DFT magnitude unchanged: ``|rfft(y)| == |rfft(clean x)|`` bin by bin, so
:func:`fa_jax.losses.spectral_mse` cannot see the shift while :func:`fa_jax.losses.mse` can.

x, y: (n, T) float32; real-valued regression targets shaped like the model's (n, T) output.
Training samples are fresh on the device (:func:`sinusoid_batch`, pure in the key); the test
set is drawn once from ``fold_in(key(test_seed), TEST_STREAM)``, a key no training step uses.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from fa_jax import checks
from fa_jax.data.task import Task
from fa_jax.errors import InputError

TEST_STREAM = 0x5167  # folded into key(test_seed): the test set's own stream


def sinusoid_batch(key: jax.Array, batch_size: int, t: int, n_components: int, max_freq: ArrayLike, noise: ArrayLike,
                   shift: ArrayLike) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``batch_size`` fresh examples (module doc): ``(x, y, clean)``, each (batch_size, t) float32
    (``clean`` is x without its noise). ``max_freq``, ``noise`` and ``shift`` may be traced."""
    k_a, k_f, k_p, k_n = jax.random.split(key, 4)
    shape = (batch_size, n_components, 1)
    amp = jax.random.uniform(k_a, shape, jnp.float32, 0.5, 1.5)
    freq = jax.random.randint(k_f, shape, 1, max_freq + 1).astype(jnp.float32)
    phase = jax.random.uniform(k_p, shape, jnp.float32, 0.0, 2 * math.pi)
    arg = 2 * math.pi * freq * jnp.arange(t, dtype=jnp.float32) / t + phase
    clean = (amp * jnp.sin(arg)).sum(1)
    y = (amp * jnp.sin(arg + shift)).sum(1)
    return clean + noise * jax.random.normal(k_n, clean.shape, jnp.float32), y, clean


def _sample(task, key, batch_size):
    a = task.aux
    x, y, _ = sinusoid_batch(key, batch_size, task.n_in, a["components"].shape[0], a["max_freq"], a["noise"],
                             a["shift"])
    return x, y


def phase_shift(t: int = 64, n_components: int = 3, max_freq: int = 8, noise: float = 0.5,
                shift: float = math.pi / 2, n_test: int = 512, *, test_seed: int = 0,
                name: str = "phase-shift") -> Task:
    """The phase-shift regression task (module doc): denoise ``x`` and shift its phase by ``shift``.

    Args:
        t: samples per signal T >= 4 (default 64).
        n_components: sinusoids per signal (default 3).
        max_freq: highest frequency in cycles per window, 1 <= max_freq < T / 2 (default 8).
        noise: std of the white Gaussian noise added to the input, >= 0 (default 0.5).
        shift: phase added to every component of the target, radians (default pi / 2).
        n_test: test signals (default 512), drawn once from ``test_seed`` (module doc).
        test_seed: an int in [0, 2**32) (default 0).
        name: the task's name (default ``"phase-shift"``).

    Returns:
        A :class:`Task` with fresh training samples, x_test, y_test (n_test, T) float32, the clean
        test inputs in ``aux["clean_test"]`` (n_test, T), ``n_in = n_out = T``, default loss mse.
    """
    checks.positive_int("phase_shift t", t, numpy=True)
    if t < 4:
        raise InputError(f"phase_shift t={t} is too short; need t >= 4 samples")
    for nm, v in (("n_components", n_components), ("max_freq", max_freq), ("n_test", n_test)):
        checks.positive_int(f"phase_shift {nm}", v, numpy=True)
    if not max_freq < t / 2:
        raise InputError(f"phase_shift max_freq={max_freq} must be below the Nyquist frequency t/2 = {t / 2:g}")
    checks.number_in("phase_shift noise", noise, 0, math.inf)
    if not (checks.is_number(shift) and math.isfinite(shift)):
        raise InputError(f"phase_shift shift must be a finite number (radians), got {shift!r}")
    checks.integer("phase_shift test_seed", test_seed, 0, 2**32, hi_open=True, numpy=True)
    if not isinstance(name, str) or not name:
        raise InputError(f"phase_shift name must be a non-empty str, got {name!r}")
    aux = {"components": jnp.zeros(n_components), "max_freq": jnp.int32(max_freq),
           "noise": jnp.float32(noise), "shift": jnp.float32(shift)}
    key = jax.random.fold_in(jax.random.key(test_seed), TEST_STREAM)
    x, y, clean = sinusoid_batch(key, n_test, t, n_components, max_freq, noise, shift)
    return Task(x_test=x, y_test=y, aux={**aux, "clean_test": clean}, name=name, n_in=t, n_out=t,
                default_loss="mse", sampler=_sample)
