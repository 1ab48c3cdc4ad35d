"""Optimizer hyperparameters are checked by name, type and range before anything is built or compiled."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.optim import hyper

# one wrong type and one impossible value per optimizer of the zoo: (key, value, message)
WRONG_TYPE = {
    "sgd": ("momentum", "high", "sgd: momentum='high' must be a number in [0, 1) or None"),
    "momentum": ("nesterov", "yes", "momentum: nesterov='yes' must be True or False"),
    "nesterov": ("momentum", [0.9], "nesterov: momentum=[0.9] must be a number in [0, 1) or None"),
    "adagrad": ("eps", None, "adagrad: eps=None must be a number in (0, inf)"),
    "adadelta": ("rho", "0.9", "adadelta: rho='0.9' must be a number in [0, 1]"),
    "rmsprop": ("centered", 1, "rmsprop: centered=1 must be True or False"),
    "adam": ("b1", "high", "adam: b1='high' must be a number in [0, 1)"),
    "adamw": ("weight_decay", "1e-4", "adamw: weight_decay='1e-4' must be a number in [0, inf) or a schedule"),
    "nadam": ("b2", True, "nadam: b2=True must be a number in [0, 1)"),
    "adamax": ("eps", {"eps": 1e-8}, "adamax: eps={'eps': 1e-08} must be a number in (0, inf)"),
    "amsgrad": ("mu_dtype", "float33",
                "amsgrad: mu_dtype='float33' must be a floating dtype name (e.g. 'float32') or None"),
}
OUT_OF_RANGE = {
    "sgd": ("momentum", -0.5, "sgd: momentum=-0.5 must be in [0, 1)"),
    "momentum": ("momentum", 1.0, "momentum: momentum=1.0 must be in [0, 1)"),
    "nesterov": ("momentum", 1.5, "nesterov: momentum=1.5 must be in [0, 1)"),
    "adagrad": ("initial_accumulator_value", -0.1, "adagrad: initial_accumulator_value=-0.1 must be in [0, inf)"),
    "adadelta": ("eps", 0.0, "adadelta: eps=0.0 must be in (0, inf)"),
    "rmsprop": ("decay", 1.1, "rmsprop: decay=1.1 must be in [0, 1]"),
    "adam": ("b1", 1.5, "adam: b1=1.5 must be in [0, 1)"),
    "adamw": ("weight_decay", -1e-4, "adamw: weight_decay=-0.0001 must be in [0, inf)"),
    "nadam": ("eps", float("inf"), "nadam: eps=inf must be in (0, inf)"),
    "adamax": ("b2", float("nan"), "adamax: b2=nan must be in [0, 1)"),
    "amsgrad": ("eps_root", -1e-8, "amsgrad: eps_root=-1e-08 must be in [0, inf)"),
}


def test_tables_cover_the_zoo():
    assert sorted(WRONG_TYPE) == sorted(OUT_OF_RANGE) == sorted(fj.optim.OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(WRONG_TYPE))
def test_wrong_type_is_one_line(name):
    key, value, match = WRONG_TYPE[name]
    one_line_error(lambda: fj.optimizer(name, 0.1, **{key: value}), match)


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_out_of_range_is_one_line(name):
    key, value, match = OUT_OF_RANGE[name]
    one_line_error(lambda: fj.optimizer(name, 0.1, **{key: value}), match)


@pytest.mark.parametrize("name", sorted(fj.optim.OPTIMIZERS))
def test_every_default_passes_explicitly(name):
    """optax's own defaults, passed by name, are accepted and build the same optimizer state."""
    params = inspect.signature(fj.optim.OPTIMIZERS[name]).parameters.values()
    defaults = {p.name: p.default for p in params if p.name != "learning_rate" and p.default is not p.empty}
    assert defaults, name
    tx = fj.optimizer(name, 0.1, **defaults)
    assert jnp.shape(tx.init(jnp.ones(3)).hyperparams["learning_rate"]) == ()


def test_ranges_name_real_keys():
    """Every range written out names a keyword of the optimizer's optax factory."""
    for name, ranges in hyper.RANGES.items():
        assert name in fj.optim.OPTIMIZERS, name
        keys = set(inspect.signature(fj.optim.OPTIMIZERS[name]).parameters)
        assert set(ranges) <= keys, (name, set(ranges) - keys)


@pytest.mark.parametrize("name,hp", [
    ("adam", {"b1": 0.0, "b2": 0}), ("adam", {"b1": np.float32(0.5)}), ("adam", {"eps": np.array(1e-6)}),
    ("sgd", {"momentum": None}), ("sgd", {"momentum": 0, "nesterov": np.bool_(True)}),
    ("adamw", {"weight_decay": optax.linear_schedule(1e-4, 0.0, 10)}), ("adadelta", {"rho": 1.0}),
    ("amsgrad", {"mu_dtype": jnp.bfloat16}), ("rmsprop", {"momentum": 0.5, "centered": True}),
])
def test_edges_and_numpy_scalars_pass(name, hp):
    fj.optimizer(name, 0.1, **hp).init(jnp.ones(2))


@pytest.mark.parametrize("name,hp,match", [
    ("adam", {"b1": np.array([0.9, 0.8])}, "adam: b1=<float64 array of shape (2,)> must be a number in [0, 1)"),
    ("adam", {"b1": jnp.full((2, 2), 0.9)}, "adam: b1=<float32 array of shape (2, 2)> must be a number"),
    ("adam", {"betas": (0.9, 0.99)}, "adam: unknown hyperparameter 'betas'; known: b1, b2, eps, eps_root, mu_dtype"),
    ("sgd", {"b1": 0.9}, "sgd: unknown hyperparameter 'b1'; known: accumulator_dtype, momentum, nesterov"),
    ("adam", {"eps": -np.inf}, "adam: eps=-inf must be in (0, inf)"),
    ("adamw", {"weight_decay": complex(1, 1)}, "adamw: weight_decay=(1+1j) must be a number"),
    ("sgd", {"accumulator_dtype": "int32"}, "sgd: accumulator_dtype='int32' must be a floating dtype name"),
])
def test_more_bad_hyperparameters(name, hp, match):
    one_line_error(lambda: fj.optimizer(name, 0.1, **hp), match)


def test_registered_optimizer_gets_type_checks_from_its_signature():
    def noisy_sgd(learning_rate, noise: float = 0.1, decay: bool = False, every: int = 2):
        return optax.sgd(learning_rate)

    fj.optim.register("noisy_sgd_test", noisy_sgd)
    try:
        fj.optimizer("noisy_sgd_test", 0.1, noise=2, every=np.int64(3))  # an int is a number; no range is stated
        one_line_error(lambda: fj.optimizer("noisy_sgd_test", 0.1, every=2.5), "noisy_sgd_test: every=2.5 must be an int")
        one_line_error(lambda: fj.optimizer("noisy_sgd_test", 0.1, noise="loud"),
                       "noisy_sgd_test: noise='loud' must be a number")
        one_line_error(lambda: fj.optimizer("noisy_sgd_test", 0.1, decay=0),
                       "noisy_sgd_test: decay=0 must be True or False")
        one_line_error(lambda: fj.optimizer("noisy_sgd_test", 0.1, nois=1),
                       "unknown hyperparameter 'nois'; known: decay, every, noise")
    finally:
        del fj.optim.OPTIMIZERS["noisy_sgd_test"]


def test_traced_hyperparameters_pass_unchecked():
    """Inside vmap a hyperparameter is a tracer: its range cannot be known, so it goes to optax as is."""
    b1 = jax.vmap(lambda b: fj.optimizer("adam", 0.1, b1=b).init(jnp.ones(2)).hyperparams["b1"])(jnp.array([0.8, 0.5]))
    np.testing.assert_allclose(b1, [0.8, 0.5])
