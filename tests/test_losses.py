"""fa_jax.losses against hand formulas written in numpy, the BCE gradient, accuracy, and the
one-line errors for unknown loss and activation names; token labels (-1 not scored) in softmax_ce and
accuracy, and the classification path unchanged (optax directly)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fa_jax as fj

Z1 = np.array([[0.3], [-1.2], [2.0]])
YB = np.array([1.0, -1.0, -1.0])
ZC = np.array([[0.1, 1.0, -0.5], [2.0, 0.0, 0.3]])
YC = np.array([1, 0])
OH = np.eye(3)[YC]


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


CASES = [
    ("bce", Z1, YB, np.mean(np.log1p(np.exp(-YB * Z1[:, 0])))),  # = BCE with t = (y+1)/2
    ("mse", Z1, YB, np.mean((Z1[:, 0] - YB) ** 2)),
    ("mae", Z1, YB, np.mean(np.abs(Z1[:, 0] - YB))),
    ("hinge", Z1, YB, np.mean(np.maximum(0, 1 - YB * Z1[:, 0]))),
    ("cosine", ZC, YC, np.mean(1 - (ZC * OH).sum(1) / np.linalg.norm(ZC, axis=1))),
    ("softmax_ce", ZC, YC, -np.mean(_np_log_softmax(ZC)[np.arange(2), YC])),
    ("softmax_ce", ZC, OH, -np.mean(_np_log_softmax(ZC)[np.arange(2), YC])),
    ("mse", ZC, YC, np.mean(((ZC - OH) ** 2).sum(1))),
    ("hinge", ZC, YC, np.mean(np.maximum(0, 1 + np.max(ZC - 1e9 * OH, 1) - (ZC * OH).sum(1)))),
]


@pytest.mark.parametrize("name,z,y,want", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_formula(x64, name, z, y, want):
    got = fj.losses.get(name)(jnp.asarray(z), jnp.asarray(y))
    np.testing.assert_allclose(float(got), want, rtol=1e-10)


def test_bce_gradient_is_yhat_minus_y(x64):
    g = jax.grad(lambda z: fj.losses.bce(z, jnp.asarray(YB)))(jnp.asarray(Z1))
    np.testing.assert_allclose(g[:, 0], (1 / (1 + np.exp(-Z1[:, 0])) - (YB + 1) / 2) / 3, rtol=1e-12)


def test_accuracy_and_errors():
    assert float(fj.losses.accuracy(jnp.asarray(Z1), jnp.asarray(YB)).mean()) == pytest.approx(2 / 3)
    assert float(fj.losses.accuracy(jnp.asarray(ZC), jnp.asarray(YC)).mean()) == 1.0
    with pytest.raises(ValueError, match=r"unknown loss 'xent'; known: bce, cosine"):
        fj.losses.get("xent")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        fj.mlp([2, 2], activation="swish")


# --- token labels (batch, T) with -1 not scored -----------------------------------------------------------

ZT = np.random.default_rng(0).normal(size=(3, 4, 5))
YT = np.array([[1, -1, 4, 0], [-1, -1, -1, -1], [2, 3, -1, 1]])


def test_token_softmax_ce_is_the_mean_over_scored_positions(x64):
    ce = -np.take_along_axis(_np_log_softmax(ZT), np.maximum(YT, 0)[..., None], -1)[..., 0]
    want = ce[YT >= 0].mean()
    got = fj.losses.softmax_ce(jnp.asarray(ZT), jnp.asarray(YT))
    np.testing.assert_allclose(float(got), want, rtol=1e-12)
    full = np.where(YT >= 0, YT, 2)
    got = fj.losses.softmax_ce(jnp.asarray(ZT), jnp.asarray(full))
    np.testing.assert_allclose(float(got), -np.take_along_axis(_np_log_softmax(ZT), full[..., None], -1).mean(),
                               rtol=1e-12)
    flat = fj.losses.softmax_ce(jnp.asarray(ZT.reshape(12, 5)), jnp.asarray(full.reshape(12)))
    np.testing.assert_allclose(float(got), float(flat), rtol=1e-12)
    g = jax.grad(fj.losses.softmax_ce)(jnp.asarray(ZT), jnp.asarray(YT))
    assert np.isfinite(g).all() and (np.asarray(g)[YT < 0] == 0).all()  # ignored positions get no gradient
    none = jnp.full((3, 4), -1)
    assert float(fj.losses.softmax_ce(jnp.asarray(ZT), none)) == 0.0
    assert (np.asarray(jax.grad(fj.losses.softmax_ce)(jnp.asarray(ZT), none)) == 0).all()


def test_token_accuracy_is_per_sequence_over_scored_positions():
    z = np.zeros((3, 4, 5), np.float32)
    z[..., 1] = 1.0  # predicts token 1 everywhere
    y = np.array([[1, -1, 1, 0], [-1, -1, -1, -1], [1, 1, -1, 1]])
    acc = fj.losses.accuracy(jnp.asarray(z), jnp.asarray(y))
    assert acc.shape == (3,) and acc.dtype == jnp.float32
    np.testing.assert_allclose(acc, [2 / 3, 0.0, 1.0])


def test_classification_softmax_ce_and_accuracy_are_unchanged():
    z = jnp.asarray(np.random.default_rng(1).normal(size=(16, 7)), jnp.float32)
    y = jnp.asarray(np.random.default_rng(2).integers(0, 7, 16))
    want = optax.losses.softmax_cross_entropy_with_integer_labels(z, y.astype(jnp.int32)).mean()
    np.testing.assert_array_equal(fj.losses.softmax_ce(z, y), want)
    np.testing.assert_array_equal(jax.jit(fj.losses.softmax_ce)(z, y), jax.jit(lambda a, b: (
        optax.losses.softmax_cross_entropy_with_integer_labels(a, b.astype(jnp.int32)).mean()))(z, y))
    oh = jax.nn.one_hot(y, 7)
    np.testing.assert_array_equal(fj.losses.softmax_ce(z, oh), optax.losses.softmax_cross_entropy(z, oh).mean())
    np.testing.assert_array_equal(fj.losses.accuracy(z, y), (z.argmax(-1) == y).astype(jnp.float32))
    np.testing.assert_array_equal(fj.losses.accuracy(z, oh), (z.argmax(-1) == y).astype(jnp.float32))
