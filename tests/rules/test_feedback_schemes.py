"""Feedback presets (``init_feedback(..., scheme=)``): shapes, bounds and variances as documented."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj

MODEL = fj.mlp([40, 300, 200, 10], init="he_uniform")


@pytest.mark.parametrize("scheme", sorted(fj.FEEDBACK_SCHEMES))
@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_shapes_and_dtype(scheme, rule, keys):
    (k,) = keys(1)
    fb = fj.init_feedback(k, MODEL, rule, scheme=scheme)
    want = fj.rules.get(rule).feedback_shapes(MODEL)
    assert [tuple(B.shape) for B in fb] == [tuple(s) for s in want]
    assert all(B.dtype == jnp.float32 for B in fb)


def test_nokland_dfa_and_xavier_bounds_and_variance(keys):
    k1, k2 = keys(2)
    for B, h in zip(fj.init_feedback(k1, MODEL, "dfa", scheme="nokland_dfa"), (300, 200)):
        a = 1 / math.sqrt(h)
        assert float(jnp.abs(B).max()) <= a and float(jnp.abs(B).max()) > 0.95 * a
        assert float(B.var()) == pytest.approx(a**2 / 3, rel=0.1)
    for B in fj.init_feedback(k2, MODEL, "fa", scheme="xavier"):
        a = math.sqrt(6 / (B.shape[0] + B.shape[1]))
        assert float(jnp.abs(B).max()) <= a and float(B.var()) == pytest.approx(a**2 / 3, rel=0.1)


def test_akrout_std(keys):
    for B in fj.init_feedback(keys(1)[0], MODEL, "fa", scheme="akrout"):
        assert float(B.std()) == pytest.approx(math.sqrt(1 / (B.shape[0] + B.shape[1])), rel=0.1)


def test_nokland_fa_is_a_forward_init_draw(keys):
    (k,) = keys(1)
    fb = fj.init_feedback(k, MODEL, "fa", scheme="nokland_fa")
    ks = jax.random.split(k, 3)
    for kk, B in zip(ks, fb):
        np.testing.assert_array_equal(B, fj.init.get("he_uniform")(kk, B.shape))
    (B1, B2) = fj.init_feedback(k, MODEL, "dfa", scheme="nokland_fa")
    assert float(B1.var()) == pytest.approx(2 / 300, rel=0.1)  # a forward layer 300 -> 10, transposed


def test_tinydfa_is_one_shared_matrix(keys):
    B1, B2 = fj.init_feedback(keys(1)[0], MODEL, "dfa", scheme="tinydfa", scale=2.0)
    np.testing.assert_array_equal(B1[:, :200], B2)  # slices of the same matrix
    s = 2.0 / math.sqrt(300)
    assert float(jnp.abs(B1).max()) <= s and float(B1.var()) == pytest.approx(s**2 / 3, rel=0.1)


def test_scheme_errors():
    with pytest.raises(ValueError, match="unknown feedback scheme 'lillicrap'; known: akrout"):
        fj.init_feedback(jax.random.key(0), MODEL, "dfa", scheme="lillicrap")
    with pytest.raises(ValueError, match="leave dist/scaling at their defaults .*dist='normal'"):
        fj.init_feedback(jax.random.key(0), MODEL, "dfa", scheme="xavier", dist="normal")
    with pytest.raises(ValueError, match="unknown feedback scheme 'x'"):
        fj.sweep(fj.mlp([64, 8, 10]), fj.data.digits(), rule="dfa", feedback={"scheme": "x"}, steps=10, eval_every=10)


def test_scheme_through_sweep():
    res = fj.sweep(fj.mlp([6, 8, 1]), fj.data.parity(6, 2), rule="dfa", feedback={"scheme": "tinydfa"},
                   seeds=2, steps=20, eval_every=10, batch_size=8, progress=False)
    B = res.state.feedback[0]
    assert B.shape == (2, 1, 8) and float(jnp.abs(B).max()) <= 1 / math.sqrt(8)
