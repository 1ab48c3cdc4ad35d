"""Sequential image models under every rule: ``fj.cnn.sequential((H, W, C), ["conv(32,5)", "relu", ...])``.

The layer list is cut into *blocks*, one per weighted layer (conv, conv_transpose, dense,
residual halves): a block is its weighted layer plus the parameter-free layers after it
(activation, pooling); a ``flatten`` (and what follows it) opens the next block. Each block
is one entry of ``model.layers`` (``layer(p, h, op) -> h'``), so the rules of
:mod:`fa_jax.rules` wire a conv net exactly as they wire an MLP:

- FA: one ``B`` per block, shaped like its kernel (``weight_shapes``);
- DFA: every hidden block's output (``hidden_shapes``, e.g. ``(H, W, C)``) receives
  ``e @ B_l`` reshaped to that shape, ``B_l: (n_out, H W C)``; the last block gets its true gradient.

Inputs are NHWC ``(batch, H, W, C)``; outputs are logits ``(batch, n_out)``.
Named models (:data:`MODELS`): ``lecture_cnn``, ``allconv``, ``resnet20``, ``mlp``.
"""

import functools
import math
import re

import jax
import jax.numpy as jnp
from flax import struct

from fa_jax import activations
from fa_jax import conv as C
from fa_jax import init as inits
from fa_jax import rules as rules_lib
from fa_jax.feedback import check_feedback
from fa_jax.registry import lookup


def _ints(args, lo, hi, name):
    if not lo <= len(args) <= hi:
        raise ValueError(f"layer {name!r} takes {lo}..{hi} arguments, got {len(args)}")
    return args


LAYERS = {
    "conv": lambda *a, **k: C.Conv(*_ints(a, 1, 3, "conv"), **k),
    "conv_transpose": lambda *a, **k: C.ConvTranspose(*_ints(a, 1, 3, "conv_transpose"), **k),
    "dense": lambda *a: C.Dense(*_ints(a, 1, 1, "dense")),
    "maxpool": lambda *a, **k: C.Pool("max", *_ints(a, 0, 2, "maxpool"), **k),
    "avgpool": lambda *a, **k: C.Pool("avg", *_ints(a, 0, 2, "avgpool"), **k),
    "global_avgpool": lambda: C.GlobalAvgPool(),
    "flatten": lambda: C.Flatten(),
    "residual_in": lambda *a: C.ResidualIn(*_ints(a, 1, 2, "residual_in")),
    "residual_out": lambda *a: C.ResidualOut(*_ints(a, 1, 1, "residual_out")),
}
_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def parse_layer(spec):
    """``"conv(32,5,stride=2,padding=VALID)"`` -> a layer object; activation names give :class:`Act`.

    Layer objects from :mod:`fa_jax.conv` pass through. Unknown names list the known ones.
    """
    if not isinstance(spec, str):
        if hasattr(spec, "out_shape"):
            return spec
        raise ValueError(f"a layer is a name like 'conv(32,5)' or a fa_jax.conv layer, got {spec!r}")
    m = _SPEC.match(spec)
    name = m.group(1) if m else spec
    if name not in LAYERS:
        if name in activations.ACTIVATIONS and m and m.group(2) is None:
            return C.Act(name)
        known = sorted(LAYERS) + sorted(activations.ACTIVATIONS)
        raise ValueError(f"unknown layer {spec!r}; known: {', '.join(known)}")
    args, kw = [], {}
    for tok in filter(None, (t.strip() for t in (m.group(2) or "").split(","))):
        key, _, val = tok.rpartition("=")
        v = val.strip() if key == "padding" else _number(spec, val)
        (kw.__setitem__(key.strip(), v) if key else args.append(v))
    try:
        return LAYERS[name](*args, **kw)
    except TypeError as err:
        raise ValueError(f"bad layer {spec!r}: {err}") from None


def _number(spec, text):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"bad layer {spec!r}: {text.strip()!r} is not an int") from None


def _blocks(layers):
    """Cut the layer list into blocks (tuples of layers), one weighted layer each."""
    blocks, cur = [], []
    for layer in layers:
        has_w = any(x.weighted for x in cur)
        if (layer.weighted or isinstance(layer, C.Flatten)) and has_w:
            blocks.append(tuple(cur))
            cur = []
        cur.append(layer)
    if not any(x.weighted for x in cur):
        raise ValueError("the model must end with a weighted layer (e.g. dense(10)) that gives the logits")
    blocks.append(tuple(cur))
    return tuple(blocks)


def _block_apply(block, p, h, op):
    for layer in block:
        h = layer.apply(p, h, op) if layer.weighted else layer.apply(h)
    return h


@struct.dataclass
class CNN:
    """A chain of blocks with ``init(key)`` / ``apply(params, x, rule=, feedback=)`` like :class:`fa_jax.MLP`.

    params: one dict per block, ``{"w": kernel, "b": (features,)}`` (+ ``"gain"`` for
    ``residual_out``). ``input_shape`` is ``(H, W, C)``.
    """

    input_shape: tuple = struct.field(pytree_node=False)
    blocks: tuple = struct.field(pytree_node=False)
    init_name: str = struct.field(pytree_node=False, default="he_uniform")
    name: str = struct.field(pytree_node=False, default="cnn")

    @property
    def _shapes(self):
        """(input shape, weight shape, output shape) of every block."""
        out, s = [], tuple(self.input_shape)
        for block in self.blocks:
            w = None
            for layer in block:
                if layer.weighted:
                    w = layer.weight_shape(s)
                s0, s = s, layer.out_shape(s)
                if layer.weighted:
                    s_in = s0
            out.append((s_in, w, s))
        return out

    @property
    def n_in(self) -> int:
        return math.prod(self.input_shape)

    @property
    def n_out(self) -> int:
        return self._shapes[-1][2][0]

    @property
    def weight_shapes(self):
        """One kernel shape per block: ``(kh, kw, c_in, c_out)`` or ``(fan_in, fan_out)`` — FA's B shapes."""
        return [w for _, w, _ in self._shapes]

    @property
    def hidden_shapes(self):
        """Feature shape of each hidden block's output (without the batch axis) — DFA's targets."""
        return [o for _, _, o in self._shapes[:-1]]

    @property
    def layers(self):
        return [lambda p, h, op, b=b: _block_apply(b, p, h, op) for b in self.blocks]

    def init(self, key, dtype=jnp.float32) -> list[dict]:
        """Draw params; key is split once per block. One compiled program (eager init of
        many kernels would compile every random op separately)."""
        return _init(self, key, jnp.dtype(dtype))

    def check_input(self, x) -> None:
        """One-line ValueError unless x is ``(batch, H, W, C)`` for this model (NHWC)."""
        shape = tuple(getattr(x, "shape", ()))
        want = tuple(self.input_shape)
        if len(shape) == 4 and shape[1:] == want:
            return
        hint = ""
        if len(shape) == 4 and shape[1:] == (want[2], want[0], want[1]):
            hint = " (looks like NCHW: use x.transpose(0, 2, 3, 1))"
        elif len(shape) == 2 and shape[1] == math.prod(want):
            hint = f" (flat: use x.reshape(-1, {want[0]}, {want[1]}, {want[2]}))"
        raise ValueError(f"input has shape {shape}, model {self.name!r} expects NHWC (batch, {want[0]}, "
                         f"{want[1]}, {want[2]}){hint}")

    def apply(self, params, x, *, rule="bp", feedback=None, train=False, key=None):
        """Logits (batch, n_out) for NHWC images x (batch, H, W, C); ``jax.grad`` through it is ``rule``.

        ``train``/``key`` are accepted for interface parity (no stochastic layers yet).
        """
        del train, key
        r = rules_lib.get(rule)
        self.check_input(x)
        if not isinstance(params, (list, tuple)) or len(params) != len(self.blocks):
            n = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
            raise ValueError(f"params has {n} blocks, model {self.name!r} has {len(self.blocks)}")
        check_feedback(self, r, feedback)
        return r.wire(self.layers, params, x, feedback)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(model, key, dtype):
    keys = jax.random.split(key, len(model.blocks))
    params = []
    for k, block, (s_in, _, _) in zip(keys, model.blocks, model._shapes):
        layer = next(x for x in block if x.weighted)
        params.append(layer.init(k, s_in, model.init_name, dtype))
    return params


def sequential(input_shape, layers, *, init: str = "he_uniform", name: str = "cnn") -> CNN:
    """Build a :class:`CNN` from layer specs (names like ``"conv(32,5)"`` or :mod:`fa_jax.conv` objects).

    input_shape: (H, W, C). Shapes are inferred and checked here, before anything compiles.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"input_shape must be (H, W, C) positive ints, got {input_shape!r}")
    inits.parse(init)
    parsed = [parse_layer(s) for s in layers]
    if not parsed:
        raise ValueError("a model needs at least one layer")
    model = CNN(input_shape=shape, blocks=_blocks(parsed), init_name=init, name=name)
    out = model._shapes[-1][2]  # runs every layer's shape check
    if len(out) != 1:
        raise ValueError(f"model output has shape {out}; end with flatten/global_avgpool and a dense layer")
    return model


def lecture_cnn(input_shape=(28, 28, 1), n_out=10, *, padding="SAME", width=1.0, init="he_uniform") -> CNN:
    """The lectures' net: conv 32 k5 -> maxpool 3 -> relu -> conv 64 k5 -> maxpool 2 -> relu -> fc 200
    -> relu -> fc n_out. ``padding="VALID"`` is the lecture's exact MNIST net (28->24->8->4->2);
    the default ``"SAME"`` also fits 8x8 digits (8->8->2->2->1). ``width`` scales the channels."""
    c1, c2, f = (max(1, round(c * width)) for c in (32, 64, 200))
    return sequential(input_shape, [f"conv({c1},5,padding={padding})", "maxpool(3)", "relu",
                                    f"conv({c2},5,padding={padding})", "maxpool(2)", "relu",
                                    "flatten", f"dense({f})", "relu", f"dense({n_out})"], init=init, name="lecture_cnn")


def allconv(input_shape=(32, 32, 3), n_out=10, *, width=1.0, init="he_uniform") -> CNN:
    """A small all-convolutional net (Springenberg et al. 2015 style, pooling by strided convs):
    conv 32 k3 -> conv 32 k3 s2 -> conv 64 k3 -> conv 64 k3 s2 -> conv n_out k1 -> global avg pool."""
    c1, c2 = (max(1, round(c * width)) for c in (32, 64))
    return sequential(input_shape, [f"conv({c1},3)", "relu", f"conv({c1},3,stride=2)", "relu",
                                    f"conv({c2},3)", "relu", f"conv({c2},3,stride=2)", "relu",
                                    f"conv({n_out},1)", "global_avgpool"], init=init, name="allconv")


def resnet(input_shape=(32, 32, 3), n_out=10, *, depth=20, width=16, init="he_uniform") -> CNN:
    """ResNet-``depth`` for CIFAR (He et al. 2016, 6n+2 layers, n = (depth-2)/6): conv 3x3 ``width``,
    three stages of n basic blocks at width, 2 width (stride 2), 4 width (stride 2), global avg
    pool, fc. Shortcuts are option A (parameter-free); no batch norm: a zero-initialised scalar
    gain per block (SkipInit) keeps it trainable (see :class:`fa_jax.conv.ResidualOut`)."""
    if (depth - 2) % 6 or depth < 8:
        raise ValueError(f"resnet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...), got {depth!r}")
    layers = [f"conv({width},3)", "relu"]
    for stage in range(3):
        for i in range(1, (depth - 2) // 6 + 1):
            stride = 2 if stage > 0 and i == 1 else 1
            layers += [f"residual_in({width << stage},{stride})", f"residual_out({width << stage})"]
    layers += ["global_avgpool", f"dense({n_out})"]
    return sequential(input_shape, layers, init=init, name=f"resnet{depth}")


def image_mlp(input_shape=(28, 28, 1), n_out=10, *, hidden=(256, 256), init="he_uniform") -> CNN:
    """The dense control on images: flatten -> (dense, relu) per hidden width -> dense n_out."""
    layers = ["flatten"]
    for h in hidden:
        layers += [f"dense({h})", "relu"]
    return sequential(input_shape, layers + [f"dense({n_out})"], init=init, name="mlp")


MODELS = {"lecture_cnn": lecture_cnn, "allconv": allconv, "resnet20": resnet, "mlp": image_mlp}


def get(name: str, input_shape, n_out, **kw) -> CNN:
    """A named model (:data:`MODELS`) for images of ``input_shape`` and ``n_out`` classes."""
    return lookup(MODELS, name, "model")(tuple(input_shape), n_out, **kw)


def n_params(params) -> int:
    """Number of trainable scalars in a params pytree."""
    return sum(int(math.prod(x.shape)) for x in jax.tree.leaves(params))
