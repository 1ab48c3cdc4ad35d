"""The conv layers' backward (fa_jax.models.conv_grad) against jax.vjp of the plain convolution."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fa_jax.models import conv_grad

CASES = [((1, 1), "SAME", (1, 1), (3, 3)), ((2, 2), "VALID", (1, 1), (3, 3)), ((2, 1), "SAME", (2, 1), (2, 3)),
         ((1, 1), "VALID", (1, 1), (1, 1)), ((2, 2), "SAME", (1, 1), (2, 3))]  # stride, padding, dilation, kernel


@pytest.mark.parametrize("kind", ["conv", "transpose"])
def test_gradients_equal_jax_in_float64(kind):
    with jax.enable_x64(True):
        for stride, pad, dil, k in CASES:
            kh = jax.random.split(jax.random.key(0), 3)
            h = jax.random.normal(kh[0], (2, 7, 6, 3), jnp.float64)
            w = jax.random.normal(kh[1], k + (3, 4), jnp.float64)
            y, plain = jax.vjp(conv_grad._op(kind, stride, pad, dil, conv_grad.DN), h, w)
            y2, ours = jax.vjp(lambda h, w: conv_grad.conv(h, w, kind, stride, pad, dil), h, w)
            g = jax.random.normal(kh[2], y.shape, jnp.float64)
            np.testing.assert_array_equal(y, y2)
            for a, b in zip(plain(g), ours(g)):
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, err_msg=f"{kind} {stride} {pad} {dil} {k}")


def test_vmapped_over_seeds_equals_per_seed():
    with jax.enable_x64(True):
        ks = jax.random.split(jax.random.key(1), 3)
        h = jax.random.normal(ks[0], (3, 2, 6, 6, 2), jnp.float64)
        w = jax.random.normal(ks[1], (3, 3, 3, 2, 5), jnp.float64)

        def loss(h, w):
            return jnp.sum(jnp.tanh(conv_grad.conv(h, w, "conv", (2, 2), "SAME", (1, 1))) ** 2)

        batched = jax.vmap(jax.grad(loss, (0, 1)))(h, w)
        for i in range(3):
            one = jax.grad(loss, (0, 1))(h[i], w[i])
            for a, b in zip(one, batched):
                np.testing.assert_allclose(b[i], a, rtol=1e-12, atol=1e-12)


def _scanned_step_labels(conv_fn):
    """The dim_labels of every convolution XLA compiles for two scanned SGD steps of a 3x3 conv pair."""
    ks = jax.random.split(jax.random.key(2), 3)
    x = jax.random.normal(ks[0], (8, 8, 8, 4))
    w = (jax.random.normal(ks[1], (3, 3, 4, 8)) * 0.1, jax.random.normal(ks[2], (3, 3, 8, 8)) * 0.1)

    def loss(w):
        h = jnp.tanh(conv_fn(x, w[0], "conv", (1, 1), "SAME", (1, 1)))
        return jnp.sum(conv_fn(h, w[1], "conv", (2, 2), "SAME", (1, 1)) ** 2)

    def steps(w):
        return jax.lax.scan(lambda w, _: (jax.tree.map(lambda a, b: a - 0.1 * b, w, jax.grad(loss)(w)), None),
                            w, None, length=2)[0]

    return re.findall(r"dim_labels=([^,\s]+)", jax.jit(steps).lower(w).compile().as_text())


def test_kernel_gradient_inside_scan_is_a_canonical_convolution():
    """On CPU, no convolution of a scanned training step keeps JAX's permuted kernel-gradient
    labels (``f01b_i01o->01bf``, which XLA's CPU backend runs through a slow generic loop);
    the plain convolution's backward does."""
    if jax.default_backend() != "cpu":
        pytest.skip("the canonical backward is the CPU path")
    ours = _scanned_step_labels(conv_grad.conv)
    plain = _scanned_step_labels(lambda h, w, kind, *a: conv_grad._op(kind, *a, conv_grad.DN)(h, w))
    assert "f01b_i01o->01bf" in plain  # the pattern exists without conv_grad (the test can fail)
    assert ours and all(lab == "b01f_01io->b01f" for lab in ours), sorted(set(ours))
