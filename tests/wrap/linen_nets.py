"""Shared linen models for the tests of ``fj.from_flax``, with the built-in model each one equals, and
the conversions between the two structures (params and feedback: a list in layer order for fj.mlp /
fj.cnn, the params' nested dict for a wrapped model)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

import fa_jax as fj
from fa_jax.rules import core as rules_lib

F64 = jnp.float64
# every rule a wrapped model runs, each with its built-in twin (the sign rules, kp, wm, sdfa, drtp included)
RULES = ["bp", "fa", "dfa", "usf", "frsf", "brsf", "kp", "wm", "sdfa", "drtp"]

# -- the MLP: tanh hidden layers, as fj.mlp(SIZES, activation="tanh") -------------------------------
SIZES = (6, 8, 7, 5)


class MLP(nn.Module):
    """Dense -> tanh per hidden width, Dense out; ``markers``: a DFAPoint after each hidden activation."""

    sizes: tuple = SIZES
    markers: bool = False
    param_dtype: str = "float64"

    @nn.compact
    def __call__(self, x):
        for f in self.sizes[1:-1]:
            x = jnp.tanh(nn.Dense(f, param_dtype=self.param_dtype)(x))
            if self.markers:
                x = fj.DFAPoint()(x)
        return nn.Dense(self.sizes[-1], param_dtype=self.param_dtype)(x)


def builtin_mlp(sizes=SIZES):
    return fj.mlp(list(sizes), activation="tanh")


# -- the CNN: conv -> relu -> conv_transpose (stride 2) -> tanh -> maxpool -> flatten -> dense -> tanh -> dense
IMAGE = (4, 4, 2)
N_OUT = 5
CNN_LAYERS = ["conv(4,3)", "relu", "conv_transpose(3,3,2)", "tanh", "maxpool(2)", "flatten", "dense(6)", "tanh",
              f"dense({N_OUT})"]


class CNN(nn.Module):
    """The linen twin of :data:`CNN_LAYERS`. ``flatten``: ``"reshape"`` (``x.reshape`` then Dense: the
    default DFA point of the first dense layer is the flat vector) or ``"general"`` (a DenseGeneral over
    (H, W, C): the point is the (H, W, C) block output, as the built-in's). ``names``: module names
    whose sorted order is the call order (the order kp/wm/brsf draw their per-layer keys in)."""

    flatten: str = "reshape"
    names: bool = False

    @nn.compact
    def __call__(self, x):
        name = (lambda s: s) if self.names else (lambda s: None)
        x = nn.relu(nn.Conv(4, (3, 3), param_dtype=F64, name=name("a_conv"))(x))
        x = jnp.tanh(nn.ConvTranspose(3, (3, 3), strides=(2, 2), param_dtype=F64, name=name("b_convT"))(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        if self.flatten == "reshape":
            x = nn.Dense(6, param_dtype=F64, name=name("c_dense"))(x.reshape(x.shape[0], -1))
        else:
            x = nn.DenseGeneral(6, axis=(-3, -2, -1), param_dtype=F64, name=name("c_dense"))(x)
        x = jnp.tanh(x)
        return nn.Dense(N_OUT, param_dtype=F64, name=name("d_out"))(x)


def builtin_cnn():
    return fj.cnn.sequential(IMAGE, CNN_LAYERS)


def wrap(module, shape):
    return fj.from_flax(module, shape, input_dtype="float64")


# -- conversions ---------------------------------------------------------------------------------------

def at(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def params_to_linen(model, blist):
    """A wrapped model's params (``{path: {"kernel", "bias"}}``) holding the built-in's list ``blist``
    (``[{"w", "b"}]`` in layer order), each kernel reshaped to the linen layer's kernel shape."""
    out = {}
    for path, shape, p in zip(model.kernel_paths, model.weight_shapes, blist, strict=True):
        node = out
        for k in path:
            node = node.setdefault(k, {})
        node.update(kernel=p["w"].reshape(shape), bias=p["b"])
    want = jax.tree.structure(jax.eval_shape(lambda k: fj.FlaxModel.init(model, k), jax.random.key(0)))
    assert jax.tree.structure(out) == want, (jax.tree.structure(out), want)
    return out


def params_to_list(model, tree, like):
    """The inverse of :func:`params_to_linen` (params or gradients), shaped like the built-in's ``like``."""
    return [{"w": at(tree, path)["kernel"].reshape(q["w"].shape), "b": at(tree, path)["bias"]}
            for path, q in zip(model.kernel_paths, like, strict=True)]


def feedback_to_linen(model, rule, fbl):
    """The built-in's feedback list as the wrapped model's feedback (FA family: the params' dict, each B
    reshaped like its kernel; DFA family: ``{point: B}``); None stays None."""
    if fbl is None:
        return None
    r = rules_lib.get(rule)
    if r.family == "fa":
        fbl = [B.reshape(s) for B, s in zip(fbl, model.weight_shapes, strict=True)]
    return model.feedback_tree(r, list(fbl))


def feedback_to_list(model, rule, fb, like):
    """The inverse of :func:`feedback_to_linen`, shaped like the built-in's list ``like``."""
    if fb is None:
        return None
    return [B.reshape(b.shape) for B, b in zip(model.feedback_list(rule, fb), like, strict=True)]


def images(key, n=5):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, *IMAGE), F64), jax.random.randint(ky, (n,), 0, N_OUT)


def vectors(key, n=7):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, SIZES[0]), F64), jax.random.randint(ky, (n,), 0, SIZES[-1])


def grads(model, params, x, y, rule, fb, **kw):
    """``jax.grad`` of the softmax cross-entropy through ``model.apply`` under ``rule`` (drtp gets targets)."""
    if rules_lib.get(rule).needs_targets:
        kw = {**kw, "targets": y}
    return jax.grad(lambda p: fj.losses.softmax_ce(model.apply(p, x, rule=rule, feedback=fb, **kw), y))(params)
