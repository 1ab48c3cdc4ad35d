"""fa_jax.losses against hand formulas written in numpy, the BCE gradient, accuracy, and the
one-line errors for unknown loss and activation names."""

import jax
import jax.numpy as jnp
import numpy as np
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
