"""Image layers (NHWC, kernels HWIO) and their feedback-alignment backward.

Each layer is a small frozen dataclass with pure functions:
``out_shape(in_shape)`` (shape inference, one-line ``ValueError`` for an impossible
kernel/stride), and for weighted layers ``weight_shape(in_shape)``,
``init(key, in_shape, init_name, dtype) -> params`` and ``apply(p, h, op) -> h'``; for
parameter-free layers ``apply(h)``. Shapes exclude the batch axis: ``(H, W, C)`` or ``(F,)``.
Layers with a normalization (:class:`BatchNorm`, :class:`GroupNorm`, residual halves with a
``norm`` other than ``"none"``) have ``normalized`` True and ``norm_features(in_shape) -> C``:
the model keeps their scale/shift (C,) in the block's params. :class:`GroupNorm` (group, layer
and instance norm) applies as ``apply(p, h, op)``; batch norm also has ``stateful`` True (the
model keeps its running mean/var (C,) in the block's stats) and
``apply_stats(p, h, op, stats, train) -> (h', new_stats)``. Layers whose output is no separate
buffer (an activation, fused into the op before it; flatten, a view) have ``stored`` False, so
the memory estimate does not count them (:attr:`fa_jax.models.cnn.CNN.units`).

``op`` is what the rule hands the layer, a :class:`fa_jax.rules.core.LayerOp`: a dense layer
calls ``op(h, w, b)``, a conv or transposed conv ``op.apply(self.fn, h, w, b)`` with its map
``fn(h, w)``, whatever the rule. :data:`fa_jax.rules.core.linear` (BP/DFA) runs ``fn`` plainly; a
:class:`fa_jax.rules.core.FALinear` (FA and its family, carrying the layer's ``B``) runs it through
:func:`fa_apply`: the conv's input receives the convolution of the output gradient with the
fixed kernel ``B`` (same shape as ``w``) instead of ``w``; its kernel gets the true gradient.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import activations, conv_grad
from fa_jax.models import init as inits
from fa_jax.models import norm as norm_lib
from fa_jax.rules import core as rules_lib
from fa_jax.rules.core import fa_apply  # noqa: F401  (FA through a conv; defined with the other rule ops)

PADDINGS = ("SAME", "VALID")


def _run(op, fn, h, w, b):
    """``fn(h, w) + b`` (``fn`` linear in w) run the way the rule's ``op`` asks: ``op.apply``."""
    if not isinstance(op, rules_lib.LayerOp):
        raise InputError(f"this rule's layer op {op!r} has no conv form: conv layers need an op with "
                         f"apply(fn, h, w, b) (fa_jax.rules.core.LayerOp), as bp's, fa's and dfa's have")
    return op.apply(fn, h, w, b)


def _pair(name, v):
    t = (v, v) if checks.is_int(v) else tuple(v) if isinstance(v, (tuple, list)) else None
    if t is None or len(t) != 2 or not all(map(checks.is_positive_int, t)):
        raise InputError(f"{name} must be a positive int or a pair of them, got {v!r}")
    return t


def _padding(p):
    checks.choice("padding", p, PADDINGS)
    return p


def _spatial(kind, in_shape, kernel, stride, dilation, padding, transpose=False):
    """Output (H', W') of a window op on (H, W); ValueError when the window does not fit."""
    if len(in_shape) != 3:
        raise InputError(f"{kind} needs an (H, W, C) input, got shape {tuple(in_shape)} (flatten comes last)")
    out = []
    for n, k, s, d in zip(in_shape[:2], kernel, stride, dilation):
        span = d * (k - 1) + 1
        if transpose:
            out.append(n * s if padding == "SAME" else (n - 1) * s + span)
        elif padding == "SAME":
            out.append(-(-n // s))
        elif n < span:
            raise InputError(f"{kind} kernel {tuple(kernel)} (dilation {tuple(dilation)}) does not fit the "
                             f"{in_shape[0]}x{in_shape[1]} input with padding 'VALID'")
        else:
            out.append((n - span) // s + 1)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Conv:
    """2-D convolution: (H, W, C) -> (H', W', features); kernel (kh, kw, C, features)."""

    features: int
    kernel: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: str = "SAME"
    dilation: tuple = (1, 1)
    weighted = True

    def __post_init__(self):
        _pair("conv features", (self.features, self.features))
        for f in ("kernel", "stride", "dilation"):
            object.__setattr__(self, f, _pair(f"conv {f}", getattr(self, f)))
        _padding(self.padding)

    def fn(self, h, w):
        return conv_grad.conv(h, w, "conv", self.stride, self.padding, self.dilation)

    def out_shape(self, in_shape):
        return _spatial("conv", in_shape, self.kernel, self.stride, self.dilation, self.padding) + (self.features,)

    def weight_shape(self, in_shape):
        return self.kernel + (in_shape[-1], self.features)

    def init(self, key, in_shape, init_name, dtype):
        return _init_kernel(key, self.weight_shape(in_shape), init_name, dtype)

    def apply(self, p, h, op):
        return _run(op, self.fn, h, p["w"], p["b"])


@dataclasses.dataclass(frozen=True)
class ConvTranspose(Conv):
    """Transposed 2-D convolution (``lax.conv_transpose``): (H, W, C) -> (H s, W s, features)
    with SAME padding, ((H-1) s + d (k-1) + 1, ...) with VALID; kernel (kh, kw, C, features)."""

    def fn(self, h, w):
        return conv_grad.conv(h, w, "transpose", self.stride, self.padding, self.dilation)

    def out_shape(self, in_shape):
        return _spatial("conv_transpose", in_shape, self.kernel, self.stride, self.dilation, self.padding,
                        transpose=True) + (self.features,)


@dataclasses.dataclass(frozen=True)
class Dense:
    """Affine map of a flat input: (F,) -> (features,); weight (F, features)."""

    features: int
    weighted = True

    def __post_init__(self):
        _pair("dense features", (self.features, self.features))

    def out_shape(self, in_shape):
        if len(in_shape) != 1:
            raise InputError(f"dense needs a flat input, got shape {tuple(in_shape)} (add a flatten before it)")
        return (self.features,)

    def weight_shape(self, in_shape):
        return (in_shape[0], self.features)

    def init(self, key, in_shape, init_name, dtype):
        return _init_kernel(key, self.weight_shape(in_shape), init_name, dtype)

    def apply(self, p, h, op):
        return op(h, p["w"], p["b"])


def _init_kernel(key, shape, init_name, dtype):
    kw, kb = jax.random.split(key)
    fan_in, fan_out = inits.fans(shape)
    return {"w": inits.get(init_name)(kw, shape, dtype), "b": inits.bias_init(init_name)(kb, fan_in, shape[-1], dtype)}


@dataclasses.dataclass(frozen=True)
class Pool:
    """Max or average pooling over (window) with stride (default: the window): (H, W, C) -> (H', W', C).

    Average pooling with SAME padding divides by the full window (zeros padded), like
    PyTorch's ``count_include_pad=True``.
    """

    kind: str
    window: tuple = (2, 2)
    stride: tuple | None = None
    padding: str = "VALID"
    weighted = False

    def __post_init__(self):
        checks.choice("pooling", self.kind, ("avg", "max"))
        object.__setattr__(self, "window", _pair("pool window", self.window))
        object.__setattr__(self, "stride", _pair("pool stride", self.window if self.stride is None else self.stride))
        _padding(self.padding)

    def out_shape(self, in_shape):
        return _spatial(f"{self.kind}pool", in_shape, self.window, self.stride, (1, 1), self.padding) + in_shape[2:]

    def apply(self, h):
        win, st = (1, *self.window, 1), (1, *self.stride, 1)
        if self.kind == "max":
            return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, win, st, self.padding)
        return jax.lax.reduce_window(h, 0.0, jax.lax.add, win, st, self.padding) / math.prod(self.window)


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool:
    """Mean over the spatial axes: (H, W, C) -> (C,)."""

    weighted = False

    def out_shape(self, in_shape):
        if len(in_shape) != 3:
            raise InputError(f"global_avgpool needs an (H, W, C) input, got shape {tuple(in_shape)}")
        return (in_shape[2],)

    def apply(self, h):
        return h.mean(axis=(-3, -2))


@dataclasses.dataclass(frozen=True)
class Flatten:
    """(H, W, C) -> (H W C,), row-major (C fastest)."""

    weighted = False
    stored = False

    def out_shape(self, in_shape):
        return (math.prod(in_shape),)

    def apply(self, h):
        return h.reshape(h.shape[0], -1)


@dataclasses.dataclass(frozen=True)
class Act:
    """Elementwise activation by name (:mod:`fa_jax.models.activations`; parameter-free ones only)."""

    name: str
    weighted = False
    stored = False

    def __post_init__(self):
        if activations.get(self.name).params:
            raise InputError(f"activation {self.name!r} has parameters; conv models take parameter-free ones")

    def out_shape(self, in_shape):
        return tuple(in_shape)

    def apply(self, h):
        return activations.get(self.name)(h)


@dataclasses.dataclass(frozen=True)
class BatchNorm:
    """Batch norm per channel: (H, W, C) over batch, H, W; (F,) over the batch; learned scale and
    shift (C,), running mean/var (C,) updated with ``momentum`` in train mode, used in eval mode
    (:func:`fa_jax.models.norm.batch_norm`). A local op: every rule backpropagates through it exactly."""

    momentum: float = 0.9
    eps: float = 1e-5
    weighted = False
    normalized = True
    stateful = True

    def __post_init__(self):
        checks.number_in("batchnorm momentum", self.momentum, 0, 1)
        checks.positive_number("batchnorm eps", self.eps, finite=False)

    def out_shape(self, in_shape):
        if len(in_shape) not in (1, 3):
            raise InputError(f"batchnorm needs an (H, W, C) or (F,) input, got shape {tuple(in_shape)}")
        return tuple(in_shape)

    def norm_features(self, in_shape):
        return in_shape[-1]

    def apply_stats(self, p, h, op, stats, train):
        """Batch norm of h with its block's scale and shift (:func:`fa_jax.models.norm.batch_norm`).

        Args:
            p: the block's params, with ``"scale"``, ``"shift"`` (C,).
            h: (batch, H, W, C) or (batch, F) input.
            op: the rule's op (unused: batch norm has no weighted map).
            stats: ``{"mean", "var"}`` (C,) running statistics, or None in train mode (none kept).
            train: normalize by the batch's statistics and update the running ones (else use them).

        Returns:
            ``(out like h, new_stats)``.
        """
        del op
        return norm_lib.batch_norm(h, p, stats, train=train, momentum=self.momentum, eps=self.eps)


GROUP_NORMS = ("group", "layer", "instance")


@dataclasses.dataclass(frozen=True)
class GroupNorm:
    """Group norm and its two ends, per example with learned scale and shift (C,); no running
    statistics, the same at train and eval (:func:`fa_jax.models.norm.group_norm`):

    - ``kind="group"`` (spec ``groupnorm(groups)``): over H, W and each of ``groups`` runs of
      C/groups consecutive channels (Wu & He 2018); on a flat (F,) input over each run of features;
    - ``"layer"`` (``layernorm``): one group, over (H, W, C) (over F for a flat input);
    - ``"instance"`` (``instancenorm``): one group per channel, over H, W; needs an (H, W, C) input.

    A local op: every rule backpropagates through it exactly.
    """

    kind: str = "group"
    groups: int | None = None
    eps: float = 1e-5
    weighted = False
    normalized = True

    def __post_init__(self):
        checks.choice("group-norm kind", self.kind, GROUP_NORMS)
        if self.kind == "group":
            if self.groups is None:
                raise InputError("groupnorm needs its number of groups, e.g. groupnorm(4)")
            checks.positive_int("groupnorm groups", self.groups)
        elif self.groups is not None:
            raise InputError(f"{self.kind}norm takes no groups (got groups={self.groups!r}); use groupnorm({self.groups})")
        checks.positive_number(f"{self.kind}norm eps", self.eps, finite=False)

    def _groups(self, c):
        return {"group": self.groups, "layer": 1, "instance": c}[self.kind]

    def out_shape(self, in_shape):
        name = f"{self.kind}norm"
        if self.kind == "instance" and len(in_shape) != 3:
            raise InputError(f"instancenorm needs an (H, W, C) input, got shape {tuple(in_shape)}: on a flat input "
                             f"each channel is a single value (use layernorm or groupnorm)")
        if len(in_shape) not in (1, 3):
            raise InputError(f"{name} needs an (H, W, C) or (F,) input, got shape {tuple(in_shape)}")
        norm_lib.check_groups(self._groups(in_shape[-1]), in_shape[-1])
        return tuple(in_shape)

    def norm_features(self, in_shape):
        return in_shape[-1]

    def apply(self, p, h, op):
        """Group norm of h (batch, H, W, C) or (batch, F) with its block's ``"scale"``, ``"shift"``
        (C,) from ``p``; ``op`` is unused (no weighted map). Returns out like h."""
        del op
        return norm_lib.group_norm(h, p, self._groups(h.shape[-1]), self.eps)
