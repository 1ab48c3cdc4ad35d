"""Every learning rule through the toolbox's layers: a conv net with group and instance norm,
DropConnect and standout, and a norm_mlp with group norm and DropConnect (pepita's model). Each
rule's update (``jax.grad`` through ``apply``, train mode, a fixed key) is finite, is not BP's,
repeats with the same key and changes with another. (The lazy baselines run on depth-two MLPs only.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fa_jax as fj
from fa_jax.rules import core as rules_lib

CONV_RULES = ["bp", "fa", "dfa", "sdfa", "drtp", "kp", "wm", "usf", "frsf", "brsf"]


def _conv():
    return fj.cnn.sequential((6, 6, 2), ["conv(4,3)", "groupnorm(2)", "relu", "conv(4,3,stride=2)", "instancenorm",
                                         "relu", "flatten", "dense(8)", "relu", "dropout(0.5,kind=dropconnect)",
                                         "dense(8)", "relu", "dropout(0.5,kind=standout)", "dense(3)"])


def _mlp():
    return fj.norm_mlp([6, 8, 8, 3], norm="group", groups=2, dropout="dropconnect", p=0.5)


def _grad_fn(model, rule):
    targets = rules_lib.get(rule).needs_targets  # drtp reads the labels

    def loss(p, fb, x, y, key):
        extra = {"targets": y} if targets else {}
        return fj.losses.softmax_ce(model.apply(p, x, rule=rule, feedback=fb, train=True, key=key, **extra), y)

    return jax.jit(jax.grad(loss))


def _data(model, key):
    kx, ky = jax.random.split(key)
    shape = model.input_shape if isinstance(model, fj.cnn.CNN) else (model.sizes[0],)
    x = jax.random.normal(kx, (5, *shape))
    return x, jax.random.randint(ky, (5,), 0, 3)


@pytest.mark.parametrize("build,rule", [(_conv, r) for r in CONV_RULES] + [(_mlp, "pepita"), (_mlp, "kp")])
def test_every_rule_updates_through_norms_and_dropout_variants(keys, build, rule):
    kp, kf, kd, k1, k2 = keys(5)
    model = build()
    params = model.init(kp)
    fb = None if rule == "bp" else fj.init_feedback(kf, model, rule)
    x, y = _data(model, kd)
    grad = _grad_fn(model, rule)
    g1, again, g2 = (jax.tree.leaves(grad(params, fb, x, y, k)) for k in (k1, k1, k2))
    assert all(bool(jnp.isfinite(a).all()) for a in g1)
    for a, b in zip(g1, again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(not np.allclose(a, b) for a, b in zip(g1, g2))  # the masks come from the key
    if rule != "bp":
        g_bp = jax.tree.leaves(_grad_fn(model, "bp")(params, None, x, y, k1))
        assert any(not np.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(g1, g_bp))
