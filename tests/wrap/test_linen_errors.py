"""What fj.from_flax, a wrapped model's apply, fj.init_feedback and fj.sweep refuse: one-line
ValueErrors naming the fault, raised before anything compiles."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.training.compiles import count_compiles


def refused(fn, match):
    """``fn()`` raises a one-line ValueError containing ``match`` and compiles nothing first."""
    with count_compiles() as c:
        msg = one_line_error(fn, match)
    assert c.count == 0, f"{c.count} compilations before the error: {msg}"
    return msg


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(8)(x))
        x = jnp.tanh(nn.Dense(7)(x))
        return nn.Dense(3)(x)


class Matmul(nn.Module):
    """A layer fa_jax cannot see into: its own param used as ``x @ w``."""

    @nn.compact
    def __call__(self, x):
        return x @ self.param("w", nn.initializers.lecun_normal(), (x.shape[-1], 4))


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        return Matmul(name="mine")(jnp.tanh(nn.Dense(5)(x)))


class Nested(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(Block(name="block")(x))


class RootParam(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(x @ self.param("w", nn.initializers.lecun_normal(), (x.shape[-1], 4)))


class Pair(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(x), x


class Summed(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(x).sum(-1)


class BN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(1)(nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(8)(x))))


@pytest.fixture(scope="module")
def wrapped():
    """A wrapped MLP, its params and its fa and dfa feedback (made outside the compile counts)."""
    model = fj.from_flax(MLP(), (6,))
    k1, k2 = jax.random.split(jax.random.key(0))
    params = model.init(k1)
    return model, params, fj.init_feedback(k2, model, "fa"), fj.init_feedback(k2, model, "dfa"), jnp.zeros((4, 6))


@pytest.fixture(scope="module", autouse=True)
def warm():
    fj.from_flax(MLP(), (6,))  # the first trace's own small compilations (keys) are not the errors'


# --- from_flax ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module,path", [(Nested(), "layer block/mine (Matmul) holds params ['w']"),
                                         (RootParam(), "layer (root) (RootParam) holds params ['w']")])
def test_a_param_used_outside_a_known_layer_is_named(module, path):
    msg = refused(lambda: fj.from_flax(module, (6,)), path)
    assert "cannot wire" in msg and "Dense" in msg and "BatchNorm" in msg  # what is supported


@pytest.mark.parametrize("shape", [(), (0, 3), (8, -1), "8", 8, [8.5], None, (2.0, 3)])
def test_bad_input_shape(shape):
    refused(lambda: fj.from_flax(MLP(), shape), "input_shape must be a tuple of positive ints")


def test_input_the_module_cannot_run_on():
    class Image(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(nn.Conv(3, (3, 3))(x).reshape(x.shape[0], -1))

    refused(lambda: fj.from_flax(Image(), (6,)), "the module does not run on inputs (batch, 6) of float32")
    refused(lambda: fj.from_flax(MLP(), (6,), input_dtype="nope"), "input_dtype must be a dtype name")


def test_output_that_is_not_one_array_of_logits():
    refused(lambda: fj.from_flax(Pair(), (6,)), "the module returns tuple")
    refused(lambda: fj.from_flax(Summed(), (6,)), "the module returns shape (2,)")


def test_a_class_or_another_object_is_not_a_module():
    refused(lambda: fj.from_flax(MLP, (6,)), "from_flax takes a module instance, got the linen class MLP: write MLP(...)")
    refused(lambda: fj.from_flax(object(), (6,)), "from_flax takes a flax.linen.Module or a flax.nnx.Module")


# --- apply ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 7), (6,), (4, 6, 1)])
def test_wrong_input_shape_in_apply(wrapped, shape):
    model, params, *_ = wrapped
    x = jnp.zeros(shape)
    refused(lambda: model.apply(params, x), f"input has shape {shape}, this model expects (batch, 6)")


def test_stats_on_a_stateless_model_and_none_on_a_stateful_one(wrapped):
    model, params, *_, x = wrapped
    refused(lambda: model.apply(params, x, stats={}), "this model has no state collections")
    refused(lambda: model.apply(params, x, stats={"batch_stats": {}}), "this model has no state collections")
    bn = fj.from_flax(BN(), (6,))
    p = bn.init(jax.random.key(0))
    refused(lambda: bn.apply(p, x), "this model has state collections (batch norm): pass stats=")


def test_fa_feedback_with_a_missing_or_extra_entry(wrapped):
    model, params, fa, dfa, x = wrapped

    def run(fb):
        return lambda: model.apply(params, x, rule="fa", feedback=fb)

    refused(run(None), "rule 'fa' needs feedback: 3 matrices")
    refused(run({k: v for k, v in fa.items() if k != "Dense_1"}), "feedback has no Dense_1/kernel")
    refused(run({**fa, "Dense_1": fa["Dense_1"]["kernel"]}), "feedback has no Dense_1/kernel")
    refused(run({**fa, "Dense_9": {"kernel": jnp.zeros((3, 3))}}), "feedback entry 'Dense_9/kernel' is not a kernel")
    msg = refused(run({**fa, "Dense_0": {**fa["Dense_0"], "bias": jnp.zeros(8)}}), "entry 'Dense_0/bias'")
    assert "biases take no B" in msg and "Dense_0, Dense_1, Dense_2" in msg
    refused(run({**fa, "Dense_0": {"kernel": jnp.zeros((6, 9))}}), "feedback[0] has shape (6, 9), expected (6, 8)")
    refused(run(dfa), "feedback has no Dense_0/kernel")  # dfa's feedback for fa
    refused(run(jnp.zeros(3)), "feedback for a wrapped Flax model is a dict")


def test_dfa_feedback_with_a_missing_or_extra_entry(wrapped):
    model, params, fa, dfa, x = wrapped

    def run(fb, rule="dfa"):
        return lambda: model.apply(params, x, rule=rule, feedback=fb)

    assert model.point_names == ["Dense_1", "Dense_2"]
    refused(run({"Dense_1": dfa["Dense_1"]}), "feedback has no entry for DFA point 'Dense_2' (points: Dense_1, Dense_2")
    refused(run({**dfa, "Dense_7": dfa["Dense_1"]}), "feedback entry 'Dense_7' is not a DFA point")
    refused(run(fa, "sdfa"), "rule 'sdfa': feedback entry 'Dense_0' is not a DFA point")
    refused(run({**dfa, "Dense_1": jnp.zeros((3, 5))}), "feedback[0] has shape (3, 5), expected (3, 8)")
    y = jnp.zeros(4, jnp.int32)
    one_line_error(lambda: jax.grad(lambda p: model.apply(p, x, rule="drtp", feedback=dfa).sum())(params),
                   "rule 'drtp' sends the target to the hidden layers")  # no targets=
    assert np.isfinite(model.apply(params, x, rule="drtp", feedback=dfa, targets=y)).all()


def test_rule_errors_in_apply(wrapped):
    model, params, *_, x = wrapped
    refused(lambda: model.apply(params, x, rule="nope"), "unknown rule 'nope'")
    refused(lambda: model.apply(params, x, rule="ntk"), "rule 'ntk' does not run on a wrapped Flax model")


# --- init_feedback --------------------------------------------------------------------------------------------

def test_init_feedback_refusals(wrapped):
    model, params, *_ = wrapped
    key = jax.random.key(3)
    refused(lambda: fj.init_feedback(key, model, "ntk"), "rule 'ntk' needs a depth-two MLP")
    refused(lambda: fj.init_feedback(key, model, "kp(b0=w)"), "pass params= to fj.init_feedback")
    refused(lambda: fj.init_feedback(key, model, "fa", scheme="nokland_fa"), "has no init_name")
    refused(lambda: fj.init_feedback(key, model, "fa", dist="cauchy"), "feedback dist")
    fb = fj.init_feedback(key, model, "kp(b0=w)", params=params)  # copies the kernels, in the params' structure
    for path in model.kernel_paths:
        np.testing.assert_array_equal(fb[path[0]]["kernel"], params[path[0]]["kernel"])


# --- fj.sweep -------------------------------------------------------------------------------------------------

TASK = fj.data.parity(6, 2)
KW = dict(seeds=1, steps=4, eval_every=2, batch_size=8, progress=False)


def test_sweep_refusals(wrapped):
    model = wrapped[0]
    binary = fj.from_flax(nn.Dense(1), (6,))
    refused(lambda: fj.sweep(model, TASK, **KW), "model is 6->3 but task 'parity")
    refused(lambda: fj.sweep(fj.from_flax(nn.Dense(1), (2, 3)), TASK, **KW), "model input shape (2, 3) does not match")
    refused(lambda: fj.sweep(fj.from_flax(BN(), (6,)), TASK, rule="pepita", **KW), "has state collections")
    refused(lambda: fj.sweep(binary, TASK, rule="rf_relu", **KW), "does not run on a wrapped Flax model")
    bn = fj.from_flax(BN(), (6,))
    refused(lambda: fj.sweep(bn, TASK, rule="fa", diagnostics=True, **KW), "diagnostics=True does not support stateful")
    refused(lambda: fj.sweep(binary, TASK, rule="fa", feedback={"dist": "cauchy"}, **KW), "feedback dist")
