"""Sequential image models under every rule: ``fj.cnn.sequential((H, W, C), ["conv(32,5)", "relu", ...])``.

The layer list is cut into *blocks*, one per weighted layer (conv, conv_transpose, dense,
residual halves): a block is its weighted layer plus the parameter-free layers after it
(activation, pooling); a ``flatten`` (and what follows it) opens the next block. Each block
is one entry of ``model.layers`` (``layer(p, h, op) -> h'``), so the rules of
:mod:`fa_jax.rules.core` wire a conv net exactly as they wire an MLP:

- FA: one ``B`` per block, shaped like its kernel (``weight_shapes``);
- DFA: every hidden block's output (``hidden_shapes``, e.g. ``(H, W, C)``) receives
  ``e @ B_l`` reshaped to that shape, ``B_l: (n_out, H W C)``; the last block gets its true gradient
  (``dfa(conv=shared)``: a weight-shared kernel instead, :mod:`fa_jax.rules.conv_feedback`).
  drtp gets the batch's labels through ``apply(..., targets=)``.

Normalization (``batchnorm``, ``layernorm``, ``instancenorm``, ``groupnorm(groups)`` layers,
``resnet(norm=)``; at most one per block, its scale/shift (C,) in the block's params) is a
local op inside its block: every rule backpropagates through it exactly (FA changes only the
kernels' backward, DFA's ``e @ B_l`` enters at the block output and flows through the block's
norm to its kernel and scale/shift). A model with batch norm has ``stateful`` True: its
running statistics are explicit, ``init_stats()`` makes them and ``apply(..., stats=, train=)``
returns ``(logits, new_stats)``, the contract ``fj.sweep`` drives (``TrainState.model_state``).
Layer, instance and group norm keep no running statistics (per example, the same at train and
eval): models without batch norm return logits only.

Inputs are NHWC ``(batch, H, W, C)``; outputs are logits ``(batch, n_out)``.
Named models (:data:`MODELS`): ``lecture_cnn``, ``allconv``, ``resnet20``, ``mlp``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import checks, pytree, registry
from fa_jax.errors import InputError
from fa_jax.models import conv as C
from fa_jax.models import dropout as D
from fa_jax.models import init as inits
from fa_jax.models import norm as norm_lib
from fa_jax.models import residual as R
from fa_jax.models.layer_specs import LAYERS, parse_layer, register_layer
from fa_jax.registry import lookup
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback import check_feedback

if TYPE_CHECKING:
    from fa_jax.rules.rule import Layer, Rule

__all__ = ["CNN", "LAYERS", "MODELS", "allconv", "get", "image_mlp", "lecture_cnn", "n_params", "parse_layer",
           "register_layer", "register_model", "resnet", "sequential"]


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
        raise InputError("the model must end with a weighted layer (e.g. dense(10)) that gives the logits")
    blocks.append(tuple(cur))
    return tuple(blocks)


def _stateful(layer) -> bool:
    return getattr(layer, "stateful", False)


def _normalized(layer) -> bool:
    return getattr(layer, "normalized", False)


def _stored(layer) -> bool:
    return getattr(layer, "stored", True)


def _dropouts(block):
    return [x for x in block if isinstance(x, D.Dropout)]


def _block_apply(block, p, h, op, stats=None, train=True, key=None):
    """``(h', new_stats)``: the block's layers in order; its batch norm (at most one) uses and
    updates ``stats`` (``None``: batch statistics, nothing kept; blocks without BN give ``{}``).
    Weighted and normalization layers read the block's params ``p``. Its dropout (at most one) acts
    only with a ``key`` (train mode); DropConnect wraps ``op``."""
    new, pre = {}, h
    drop = key is not None
    for layer in _dropouts(block) if drop else ():
        if layer.connects:
            op = D.DropConnectOp(op, key, layer.p)
    for layer in block:
        if _stateful(layer):
            h, new = layer.apply_stats(p, h, op, stats, train)
        elif isinstance(layer, D.Dropout):
            h = layer.apply(key, h, drop, pre)
        elif layer.weighted:
            h = layer.apply(p, h, op)
        else:
            pre = h
            h = layer.apply(p, h, op) if _normalized(layer) else layer.apply(h)
    return h, new


@pytree.dataclass
class CNN:
    """A chain of blocks with ``init(key)`` / ``apply(params, x, rule=, feedback=)`` like :class:`fa_jax.MLP`.

    params: one dict per block, ``{"w": kernel, "b": (features,)}`` (+ ``"gain"`` for
    ``residual_out`` without norm, + ``"scale"``, ``"shift"`` (C,) for a block with a normalization:
    batch, layer, instance or group norm).
    ``input_shape`` is ``(H, W, C)``.
    """

    input_shape: tuple = pytree.field(pytree_node=False)
    blocks: tuple = pytree.field(pytree_node=False)
    init_name: str = pytree.field(pytree_node=False, default="he_uniform")
    name: str = pytree.field(pytree_node=False, default="cnn")

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
    def weight_shapes(self) -> list[tuple[int, ...]]:
        """One kernel shape per block: ``(kh, kw, c_in, c_out)`` or ``(fan_in, fan_out)`` — FA's B shapes."""
        return [w for _, w, _ in self._shapes]

    @property
    def hidden_shapes(self) -> list[tuple[int, ...]]:
        """Feature shape of each hidden block's output (without the batch axis) — DFA's targets."""
        return [o for _, _, o in self._shapes[:-1]]

    @property
    def units(self) -> list[int]:
        """Activations per example, one entry per layer whose output is stored (not activations,
        fused into the op before them, nor flatten, a view): the memory estimate's count."""
        out, s = [], tuple(self.input_shape)
        for block in self.blocks:
            for layer in block:
                s = layer.out_shape(s)
                if _stored(layer):
                    out.append(math.prod(s))
        return out

    @property
    def stochastic(self) -> bool:
        """True when a block holds dropout: ``apply(..., train=True)`` then needs ``key=``."""
        return any(x.p > 0 for b in self.blocks for x in _dropouts(b))

    @property
    def stateful(self) -> bool:
        """True when a block holds batch norm: ``apply`` then takes ``stats=`` and returns ``(logits, stats)``."""
        return any(_stateful(x) for b in self.blocks for x in b)

    def _sizes_of(self, which):
        """Per block: the channel count C of its layer for which ``which(layer)``, or None."""
        out, s = [], tuple(self.input_shape)
        for block in self.blocks:
            c = None
            for layer in block:
                if which(layer):
                    c = layer.norm_features(s)
                s = layer.out_shape(s)
            out.append(c)
        return out

    @property
    def _norm_sizes(self):
        """Per block: the channel count C of its normalization (any kind: scale/shift params), or None."""
        return self._sizes_of(_normalized)

    @property
    def _bn_sizes(self):
        """Per block: the channel count C of its batch norm (running statistics), or None."""
        return self._sizes_of(_stateful)

    def init_stats(self, dtype: DTypeLike = jnp.float32) -> list[dict[str, jax.Array]]:
        """Running statistics, one dict per block: ``{"mean": (C,) zeros, "var": (C,) ones}`` for a
        block with batch norm, ``{}`` otherwise (layer, instance and group norm keep none)."""
        return [{} if c is None else norm_lib.init_batch_stats(c, dtype) for c in self._bn_sizes]

    @property
    def layers(self) -> list[Layer]:
        """One ``layer(p, h, op) -> h'`` per block (batch norm, if any, uses the batch's statistics;
        dropout is off)."""
        return self._wired(True, None)

    def _wired(self, train, key):
        """The blocks as ``layer(p, h, op)``, dropout keyed by ``fold_in(key, block)`` when ``key`` is given."""
        keys = [None if key is None else jax.random.fold_in(key, i) for i in range(len(self.blocks))]
        return [lambda p, h, op, b=b, k=k: _block_apply(b, p, h, op, None, train, k)[0]
                for b, k in zip(self.blocks, keys)]

    def check_stats(self, stats: Sequence[dict[str, jax.Array]]) -> None:
        """One-line ValueError unless ``stats`` has this model's structure (``init_stats()``)."""
        want = [{} if c is None else {"mean": (c,), "var": (c,)} for c in self._bn_sizes]
        got = jax.tree.map(jnp.shape, list(stats)) if isinstance(stats, (list, tuple)) else stats
        if got != want:
            raise InputError(f"stats do not match model {self.name!r}: make them with model.init_stats() "
                             f"(one dict per block, {sum(c is not None for c in self._bn_sizes)} with batch norm)")

    def init(self, key: jax.Array, dtype: DTypeLike = jnp.float32) -> list[dict[str, jax.Array]]:
        """Draw params; key is split once per block. One compiled program (eager init of
        many kernels would compile every random op separately)."""
        return _init(self, key, jnp.dtype(dtype))

    def check_input(self, x: jax.Array) -> None:
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
        raise InputError(f"input has shape {shape}, model {self.name!r} expects NHWC (batch, {want[0]}, "
                         f"{want[1]}, {want[2]}){hint}")

    def apply(self, params: Sequence[dict[str, jax.Array]], x: jax.Array, *, rule: str | Rule = "bp",
              feedback: Any = None, train: bool = False, key: jax.Array | None = None,
              stats: Sequence[dict[str, jax.Array]] | None = None,
              targets: jax.Array | None = None) -> jax.Array | tuple[jax.Array, list[dict[str, jax.Array]]]:
        """Logits (batch, n_out) for NHWC images x (batch, H, W, C); ``jax.grad`` through it is ``rule``.

        Args:
            params: one dict per block (class doc), e.g. from :meth:`init`.
            x: (batch, H, W, C) images, ``(H, W, C) == input_shape``.
            rule: a name from ``fj.RULES`` (default ``"bp"``).
            feedback: the rule's fixed feedback (:func:`fa_jax.init_feedback`); None for BP.
            train: with batch norm, ``True`` normalizes by the batch's statistics and updates the
                running ones, ``False`` (default) uses the running ones (stats unchanged).
                Without batch norm it has no effect.
            key: a ``jax.random`` key for the dropout layers, required when ``train`` and the model
                is ``stochastic``; block i draws from ``fold_in(key, i)``. Unused otherwise.
            stats: running statistics from :meth:`init_stats`; required with batch norm
                (``stateful``), refused without.
            targets: the batch's labels, for rules that read them (``Rule.needs_targets``: drtp;
                as :meth:`fa_jax.MLP.apply`); other rules ignore them.

        Returns:
            The logits (batch, n_out); with batch norm ``(logits, new_stats)``.
        """
        r = rules_lib.get(rule)
        if train and self.stochastic and key is None:
            raise InputError(f"model {self.name!r} has dropout: pass key= with train=True")
        key = key if train and self.stochastic else None
        self.check_input(x)
        if not isinstance(params, (list, tuple)) or len(params) != len(self.blocks):
            n = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
            raise InputError(f"params has {n} blocks, model {self.name!r} has {len(self.blocks)}")
        check_feedback(self, r, feedback)
        if not self.stateful:
            if stats is not None:
                raise InputError(f"model {self.name!r} has no batch norm; stats= is for batch-norm models only")
            return r.apply_layers(self._wired(train, key), params, x, feedback, targets)
        if stats is None:
            raise InputError(f"model {self.name!r} has batch norm: pass stats= (make them with model.init_stats())")
        self.check_stats(stats)
        new = list(stats)

        def block(i, p, h, op):
            k = None if key is None else jax.random.fold_in(key, i)
            h, new[i] = _block_apply(self.blocks[i], p, h, op, stats[i], train, k)
            return h

        y = r.apply_layers([functools.partial(block, i) for i in range(len(self.blocks))], params, x, feedback, targets)
        return y, new


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(model, key, dtype):
    keys = jax.random.split(key, len(model.blocks))
    params = []
    for k, block, (s_in, _, _), c in zip(keys, model.blocks, model._shapes, model._norm_sizes):
        layer = next(x for x in block if x.weighted)
        params.append(layer.init(k, s_in, model.init_name, dtype))
        if c is not None:
            params[-1].update(norm_lib.init_norm(c, dtype))
    return params


def sequential(input_shape: Sequence[int], layers: Sequence[Any], *, init: str = "he_uniform",
               name: str = "cnn") -> CNN:
    """Build a :class:`CNN` from layer specs (names like ``"conv(32,5)"`` or :mod:`fa_jax.models.conv` objects).

    input_shape: (H, W, C). Shapes are inferred and checked here, before anything compiles.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(map(checks.is_positive_int, shape)):
        raise InputError(f"input_shape must be (H, W, C) positive ints, got {input_shape!r}")
    inits.get(init)  # checks the name and its argument (uniform(a) needs a > 0) before any run
    parsed = [parse_layer(s) for s in layers]
    if not parsed:
        raise InputError("a model needs at least one layer")
    model = CNN(input_shape=shape, blocks=_blocks(parsed), init_name=init, name=name)
    out = model._shapes[-1][2]  # runs every layer's shape check
    for i, block in enumerate(model.blocks):
        _check_dropout(i, block)
        if sum(map(_normalized, block)) > 1:
            raise InputError(f"block {i} ({', '.join(type(x).__name__ for x in block)}) has more than one "
                             f"norm layer (batch, layer, instance or group norm); a block (one weighted layer "
                             f"and what follows it) takes at most one")
    if len(out) != 1:
        raise InputError(f"model output has shape {out}; end with flatten/global_avgpool and a dense layer")
    return model


def _check_dropout(i, block):
    """At most one dropout layer per block; standout right after an activation."""
    drops = _dropouts(block)
    if len(drops) > 1:
        raise InputError(f"block {i} has {len(drops)} dropout layers; a block (one weighted layer and what "
                         f"follows it) takes at most one")
    for j, layer in enumerate(block):
        if isinstance(layer, D.Dropout) and layer.kind == "standout" and not (j and isinstance(block[j - 1], C.Act)):
            raise InputError(f"block {i}: dropout(kind=standout) reads the pre-activation, so it must directly "
                             f"follow an activation layer (e.g. 'relu', 'dropout({layer.p},kind=standout)')")


def _scaled(channels: int, width) -> int:
    """``channels * width`` rounded, at least 1; one-line ValueError unless width is a positive finite number."""
    checks.positive_number("width", width, what="a positive finite number (a channel multiplier)")
    return max(1, round(channels * width))


def _dropout_layers(dropout, p, alpha) -> list:
    """``[]`` or ``[Dropout(...)]`` from a builder's ``dropout=`` / ``p=`` (:func:`fa_jax.models.dropout.resolve`)."""
    kind, rate = D.resolve(dropout, p)
    return [] if kind == "none" else [D.Dropout(rate, kind, alpha)]


def lecture_cnn(input_shape: Sequence[int] = (28, 28, 1), n_out: int = 10, *, padding: str = "SAME",
                width: float = 1.0, init: str = "he_uniform", dropout: str | float = "none", p: float | None = None,
                standout_alpha: float = 1.0) -> CNN:
    """The lectures' net: conv 32 k5 -> maxpool 3 -> relu -> conv 64 k5 -> maxpool 2 -> relu -> fc 200
    -> relu (-> dropout) -> fc n_out.

    Args:
        input_shape: (H, W, C) of the images (default (28, 28, 1), MNIST).
        n_out: classes, the size of the last dense layer (default 10).
        padding: of both convs: ``"VALID"`` is the lecture's exact MNIST net (28->24->8->4->2);
            the default ``"SAME"`` also fits 8x8 digits (8->8->2->2->1).
        width: scales the channels and the hidden dense width (32, 64, 200; rounded, at least 1).
        init: the kernels' init name (:data:`fa_jax.models.init.INITS`; default ``"he_uniform"``).
        dropout: on the hidden fc layer: ``"none"`` (default), a kind of
            :data:`fa_jax.models.dropout.KINDS` (``"dropconnect"`` drops the fc 200 weights, the
            others its units), or a number (Bernoulli at that rate).
        p: the rate in [0, 1) of a named kind (default 0.5).
        standout_alpha: standout's slope (default 1).
    """
    c1, c2, f = (_scaled(c, width) for c in (32, 64, 200))
    drop = _dropout_layers(dropout, p, standout_alpha)
    return sequential(input_shape, [f"conv({c1},5,padding={padding})", "maxpool(3)", "relu",
                                    f"conv({c2},5,padding={padding})", "maxpool(2)", "relu",
                                    "flatten", f"dense({f})", "relu", *drop, f"dense({n_out})"], init=init,
                      name="lecture_cnn")


def allconv(input_shape: Sequence[int] = (32, 32, 3), n_out: int = 10, *, width: float = 1.0,
            init: str = "he_uniform") -> CNN:
    """A small all-convolutional net (Springenberg et al. 2015 style, pooling by strided convs):
    conv 32 k3 -> conv 32 k3 s2 -> conv 64 k3 -> conv 64 k3 s2 -> conv n_out k1 -> global avg pool."""
    c1, c2 = (_scaled(c, width) for c in (32, 64))
    return sequential(input_shape, [f"conv({c1},3)", "relu", f"conv({c1},3,stride=2)", "relu",
                                    f"conv({c2},3)", "relu", f"conv({c2},3,stride=2)", "relu",
                                    f"conv({n_out},1)", "global_avgpool"], init=init, name="allconv")


def resnet(input_shape: Sequence[int] = (32, 32, 3), n_out: int = 10, *, depth: int = 20, width: int = 16,
           norm: str = "batch", groups: int = 8, init: str = "he_uniform") -> CNN:
    """ResNet-``depth`` for CIFAR (He et al. 2016, 6n+2 layers, n = (depth-2)/6).

    Conv 3x3 ``width`` (-> norm) -> relu, three stages of n basic blocks at width, 2 width
    (stride 2), 4 width (stride 2), global avg pool, fc. Shortcuts are option A
    (parameter-free). Hidden blocks (what DFA feeds back to, see :mod:`fa_jax.models.residual`):
    the stem and each half of every basic block, 6n + 1 (19 for depth 20).

    Args:
        input_shape: (H, W, C) of the images (default (32, 32, 3), CIFAR).
        n_out: classes (default 10).
        depth: 6n+2 layers with n >= 1: 8, 14, 20 (default), 32, ...
        width: channels of the stem and the first stage (default 16).
        norm: ``"batch"`` (default): batch norm after every conv (the paper's net; ``stateful``);
            ``"layer"``, ``"instance"``, ``"group"``: that per-example norm after every conv
            (:func:`fa_jax.models.norm.group_norm` with 1, C or ``groups`` groups; not stateful);
            ``"none"``: no norm, a zero-initialised scalar gain per block (SkipInit) keeps it trainable.
        groups: with ``norm="group"``, the groups of every norm (default 8); it must divide
            ``width`` (and so 2 width, 4 width), a one-line error otherwise.
        init: the kernels' init name (:data:`fa_jax.models.init.INITS`; default ``"he_uniform"``).
    """
    if (depth - 2) % 6 or depth < 8:
        raise InputError(f"resnet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...), got {depth!r}")
    checks.choice("resnet norm", norm, R.NORMS)
    checks.positive_int("resnet groups", groups)
    if norm == "group":
        norm_lib.check_groups(groups, width, what=f"channels (resnet width={width})")
    stem = {"batch": ["batchnorm"], "layer": ["layernorm"], "instance": ["instancenorm"],
            "group": [f"groupnorm({groups})"], "none": []}[norm]
    layers = [f"conv({width},3)"] + stem + ["relu"]
    for stage in range(3):
        for i in range(1, (depth - 2) // 6 + 1):
            stride = 2 if stage > 0 and i == 1 else 1
            c = width << stage
            layers += [f"residual_in({c},{stride},norm={norm},groups={groups})",
                       f"residual_out({c},norm={norm},groups={groups})"]
    layers += ["global_avgpool", f"dense({n_out})"]
    return sequential(input_shape, layers, init=init, name=f"resnet{depth}")


def image_mlp(input_shape: Sequence[int] = (28, 28, 1), n_out: int = 10, *, hidden: Sequence[int] = (256, 256),
              init: str = "he_uniform", dropout: str | float = "none", p: float | None = None,
              standout_alpha: float = 1.0) -> CNN:
    """The dense control on images: flatten -> (dense, relu (, dropout)) per hidden width -> dense n_out.

    ``dropout``, ``p``, ``standout_alpha``: as :func:`lecture_cnn`'s, in every hidden layer."""
    drop = _dropout_layers(dropout, p, standout_alpha)
    layers = ["flatten"]
    for h in hidden:
        layers += [f"dense({h})", "relu", *drop]
    return sequential(input_shape, layers + [f"dense({n_out})"], init=init, name="mlp")


MODELS = {"lecture_cnn": lecture_cnn, "allconv": allconv, "resnet20": resnet, "mlp": image_mlp}


def register_model(name: str, build: Callable[..., CNN], *, replace: bool = False) -> Callable[..., CNN]:
    """Add ``build(input_shape, n_out, **kw) -> CNN`` to :data:`MODELS` as ``name`` (for :func:`get`);
    a name already registered is refused unless ``replace=True``. Returns ``build``."""
    return registry.add(MODELS, name, build, what="model", replace=replace)


def get(name: str, input_shape: Sequence[int], n_out: int, **kw: Any) -> CNN:
    """A named model (:data:`MODELS`) for images of ``input_shape`` and ``n_out`` classes."""
    return lookup(MODELS, name, "model")(tuple(input_shape), n_out, **kw)


def n_params(params: Any) -> int:
    """Number of trainable scalars in a params pytree."""
    return sum(int(math.prod(x.shape)) for x in jax.tree.leaves(params))
