"""fa_jax.registry.add and every register function built on it: duplicates are refused, replace=True replaces."""

import jax
import jax.numpy as jnp
import optax
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax import registry
from fa_jax.models import conv
from fa_jax.rules import feedback_schemes


def test_add_refuses_a_duplicate_and_replaces_when_asked():
    table = {"a": 1}
    assert registry.add(table, "b", 2, what="thing") == 2 and table == {"a": 1, "b": 2}
    assert one_line_error(lambda: registry.add(table, "a", 3, what="thing"), "") == (
        "thing 'a' is already registered; pass replace=True to replace it")
    assert table["a"] == 1
    assert registry.add(table, "a", 3, what="thing", replace=True) == 3 and table["a"] == 3
    one_line_error(lambda: registry.add(table, "", 4, what="thing"), "a thing name must be a non-empty str, got ''")
    one_line_error(lambda: registry.add(table, 5, 4, what="thing"), "got 5")
    one_line_error(lambda: registry.add(table, "c", 4, what="thing", replace="yes"), "replace must be True or False")


def test_rule_registry():
    one_line_error(lambda: fj.register(fj.Rule("fa", fj.rules.bp)),
                   "rule 'fa' is already registered; pass replace=True to replace it")
    assert fj.RULES["fa"].wire is fj.rules.fa
    one_line_error(lambda: fj.register("bp"), "register takes a fa_jax.Rule")
    rule = fj.Rule("test_registry_bp", fj.rules.bp)
    try:
        assert fj.register(rule) is rule
        one_line_error(lambda: fj.register(fj.Rule("test_registry_bp", fj.rules.fa)), "already registered")
        other = fj.Rule("test_registry_bp", fj.rules.bp, doc="replaced")
        assert fj.register(other, replace=True) is other and fj.rules.get("test_registry_bp") is other
    finally:
        del fj.RULES["test_registry_bp"]


def _scheme(key, model, rule, shapes, dtype):
    return [jnp.ones(s, dtype) for s in shapes]


# (register call, duplicate of a built-in, table, name registered by the test, how the new entry is used)
CASES = [
    ("init", lambda r: fj.init.register("test_ones", lambda k, s, d=jnp.float32: jnp.ones(s, d), replace=r),
     lambda: fj.init.register("he_uniform", fj.init.zeros), fj.init.INITS, "test_ones",
     lambda: fj.mlp([2, 3, 1], init="test_ones").init(jax.random.key(0))[0]["w"].sum() == 6),
    ("activation", lambda r: fj.activations.register(fj.activations.Activation(
        "test_square", lambda a, p: a * a), replace=r),
     lambda: fj.activations.register(fj.activations.Activation("relu", lambda a, p: a)),
     fj.activations.ACTIVATIONS, "test_square", lambda: fj.activations.get("test_square")(jnp.asarray(3.0)) == 9),
    ("loss", lambda r: fj.losses.register("test_zero", lambda z, y: 0.0 * z.sum(), replace=r),
     lambda: fj.losses.register("mse", fj.losses.mae), fj.losses.LOSSES, "test_zero",
     lambda: fj.losses.get("test_zero")(jnp.ones((2, 1)), jnp.ones(2)) == 0),
    ("schedule", lambda r: fj.schedules.register("test_flat", lambda lr, steps: optax.constant_schedule(lr), replace=r),
     lambda: fj.schedules.register("constant", lambda lr, steps: None), fj.schedules.SCHEDULES, "test_flat",
     lambda: fj.schedules.schedule("test_flat", 0.5, 10)(3) == 0.5),
    ("optimizer", lambda r: fj.optim.register("test_sgd", optax.sgd, replace=r),
     lambda: fj.optim.register("adam", optax.sgd), fj.optim.OPTIMIZERS, "test_sgd",
     lambda: isinstance(fj.optimizer("test_sgd", 0.1), optax.GradientTransformation)),
    ("layer", lambda r: fj.cnn.register_layer("test_dense", lambda n: conv.Dense(n), replace=r),
     lambda: fj.cnn.register_layer("conv", lambda n: conv.Dense(n)), fj.cnn.LAYERS, "test_dense",
     lambda: fj.cnn.sequential((4, 4, 1), ["flatten", "test_dense(3)"]).weight_shapes == [(16, 3)]),
    ("model", lambda r: fj.cnn.register_model("test_mlp", fj.cnn.image_mlp, replace=r),
     lambda: fj.cnn.register_model("allconv", fj.cnn.image_mlp), fj.cnn.MODELS, "test_mlp",
     lambda: fj.cnn.get("test_mlp", (4, 4, 1), 3, hidden=(5,)).weight_shapes == [(16, 5), (5, 3)]),
    ("feedback scheme", lambda r: feedback_schemes.register("test_ones", _scheme, replace=r),
     lambda: feedback_schemes.register("xavier", _scheme), fj.FEEDBACK_SCHEMES, "test_ones",
     lambda: float(fj.init_feedback(jax.random.key(0), fj.mlp([2, 3, 1]), "fa", scheme="test_ones")[0].sum()) == 6),
]


@pytest.mark.parametrize("what,register,duplicate,table,name,works", CASES, ids=[c[0] for c in CASES])
def test_each_registry_refuses_duplicates(what, register, duplicate, table, name, works):
    before = dict(table)
    one_line_error(duplicate, "is already registered; pass replace=True to replace it")
    assert table == before  # the built-in is untouched
    try:
        register(False)
        assert works()
        one_line_error(lambda: register(False), f"{what} {name!r} is already registered")
        register(True)
        assert works()
    finally:
        table.pop(name, None)
    assert table == before


def test_layer_names_must_parse():
    one_line_error(lambda: fj.cnn.register_layer("Dense2", lambda n: conv.Dense(n)),
                   "a layer name is lowercase letters and underscores")
