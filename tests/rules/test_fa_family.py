"""FA-family rules through the one layer-op interface (fa_jax.rules.core.LayerOp), float64: a rule
registered from outside works on dense, conv, transposed-conv and residual layers at once."""

import chex
import jax
import jax.numpy as jnp
import pytest
from error_check import one_line_error

import fa_jax as fj

TOL = dict(rtol=1e-12, atol=1e-14)


@pytest.fixture
def rules():
    """Registers the test rules for one test and removes them afterwards."""
    added = []

    def add(rule):
        added.append(fj.register(rule).name)

    yield add
    for name in added:
        del fj.RULES[name]


MODELS = {
    "mlp": lambda: fj.mlp([5, 7, 6, 3], activation="tanh"),
    "cnn": lambda: fj.cnn.sequential((6, 6, 2), ["conv(3,3)", "tanh", "conv_transpose(2,3,stride=2)", "relu",
                                                 "maxpool(2)", "flatten", "dense(4)", "tanh", "dense(3)"]),
    "resnet": lambda: fj.cnn.sequential((6, 6, 2), ["conv(3,3)", "relu", "residual_in(4,2)", "residual_out(4)",
                                                    "global_avgpool", "dense(3)"]),
}


def _setup(name, keys):
    model = MODELS[name]()
    k1, k2 = keys(2)
    params = model.init(k1, jnp.float64)
    x = jax.random.normal(k2, (4, *fj.models.contract.input_shape(model)), jnp.float64)
    return model, params, x, jnp.arange(4) % 3


def _grads(model, params, x, y, rule, feedback=None):
    """Gradients w.r.t. params and the input (what the first layer sends back)."""
    loss = lambda p, x_: fj.losses.softmax_ce(model.apply(p, x_, rule=rule, feedback=feedback), y)  # noqa: E731
    return jax.grad(loss, argnums=(0, 1))(params, x)


@pytest.mark.parametrize("name", MODELS)
def test_a_mirror_rule_registered_from_outside_is_bp(x64, keys, rules, name):
    """``backward(w, B) = w`` (weight mirroring at its fixed point): every layer sends
    ``delta @ W.T`` back, which is BP, on dense and conv layers alike."""
    rules(fj.Rule("test_mirror", fj.rules.fa_family(lambda w, B: w)))
    model, params, x, y = _setup(name, keys)
    chex.assert_trees_all_close(_grads(model, params, x, y, "test_mirror"), _grads(model, params, x, y, "bp"), **TOL)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_a_sign_rule_differs_from_bp_below_the_output_layer(x64, keys, rules, name):
    """``backward(w, B) = sign(w)`` (uSF): the top layer's gradient is BP's, the input's is not."""
    rules(fj.Rule("test_usf", fj.rules.fa_family(lambda w, B: jnp.sign(w))))
    model, params, x, y = _setup(name, keys)
    (g, gx), (g_bp, gx_bp) = _grads(model, params, x, y, "test_usf"), _grads(model, params, x, y, "bp")
    chex.assert_trees_all_close(g[-1], g_bp[-1], **TOL)
    assert not jnp.allclose(gx, gx_bp)


class Scaled:
    """A layer op written from scratch: forward as BP's, the input's cotangent times ``c``
    (FA with B = c W). Dense and conv layers both run through it."""

    def __init__(self, c):
        self.c = c

    def __call__(self, h, w, b):
        return _scale_grad(h, self.c) @ w + b

    def apply(self, fn, h, w, b):
        return fn(_scale_grad(h, self.c), w) + b


@jax.custom_vjp
def _scale_grad(h, c):
    return h


_scale_grad.defvjp(lambda h, c: (h, c), lambda c, g: (c * g, jnp.zeros_like(c)))


def _scaled_wire(layers, params, x, feedback):
    h = x
    for layer, p in zip(layers, params):
        h = layer(p, h, Scaled(jnp.asarray(2.0, x.dtype)))
    return h


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_a_hand_written_op_class_plugs_into_dense_and_conv_layers(x64, keys, rules, name):
    """Every layer doubles its input's cotangent, so layer l of L gets 2^(L-1-l) times BP's
    gradient and the input 2^L times (exact: powers of two)."""
    rules(fj.Rule("test_scaled", _scaled_wire))
    model, params, x, y = _setup(name, keys)
    (g, gx), (g_bp, gx_bp) = _grads(model, params, x, y, "test_scaled"), _grads(model, params, x, y, "bp")
    n = len(params)
    want = [jax.tree.map(lambda a, s=2.0 ** (n - 1 - l): s * a, gl) for l, gl in enumerate(g_bp)]
    chex.assert_trees_all_close(g, want, **TOL)
    chex.assert_trees_all_close(gx, 2.0 ** n * gx_bp, **TOL)


def test_an_op_without_apply_is_refused_by_conv_layers(rules):
    """A rule may hand dense layers a plain function; a conv layer asks for the LayerOp interface."""
    rules(fj.Rule("test_plain", lambda layers, params, x, fb: fj.rules.bp(
        [lambda p, h, op, f=f: f(p, h, lambda h_, w, b: h_ @ w + b) for f in layers], params, x, fb)))
    mlp = fj.mlp([3, 4, 1])
    assert mlp.apply(mlp.init(jax.random.key(0)), jnp.ones((2, 3)), rule="test_plain").shape == (2, 1)
    cnn = MODELS["cnn"]()
    one_line_error(lambda: cnn.apply(cnn.init(jax.random.key(0)), jnp.ones((2, 6, 6, 2)), rule="test_plain"),
                   "has no conv form: conv layers need an op with apply(fn, h, w, b) (fa_jax.rules.core.LayerOp)")


def test_built_in_ops_satisfy_the_interface():
    assert isinstance(fj.rules.linear, fj.rules.LayerOp)
    assert isinstance(fj.rules.FALinear(jnp.ones((2, 2))), fj.rules.LayerOp)
    assert not isinstance(lambda h, w, b: h @ w + b, fj.rules.LayerOp)
    one_line_error(lambda: fj.rules.FALinear(None)(jnp.ones((1, 2)), jnp.ones((2, 2)), jnp.ones(2)),
                   "FALinear needs a feedback matrix B or a backward(w, B) function")
