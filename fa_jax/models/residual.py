"""ResNet basic blocks as two chain layers (NHWC), with batch, layer, instance or group norm, or SkipInit.

A basic block ``relu(n2(conv3x3(relu(n1(conv3x3_s(x))))) + shortcut(x))`` is cut in two
weighted layers so the model stays a chain that every rule wires unchanged:
:class:`ResidualIn` outputs ``[a | shortcut(x)]`` (2 C channels) and :class:`ResidualOut`
adds its branch to the carried shortcut. ``norm="batch"``: ``n1``, ``n2`` are batch norm
(He et al. 2016; :func:`fa_jax.models.norm.batch_norm`, stateful, see :mod:`fa_jax.models.conv`);
``"layer"``, ``"instance"``, ``"group"``: per-example :func:`fa_jax.models.norm.group_norm` with
1, C or ``groups`` groups (not stateful); each with its learned scale/shift (C,) in the half's
params. ``norm="none"``: no ``n1``, and ``n2`` is a learned scalar gain initialised to 0
(SkipInit, De & Smith 2020). Shortcuts are option A: subsample by the stride, zero-pad the channels.
"""

import dataclasses

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import norm as norm_lib
from fa_jax.models.conv import Conv, _init_kernel, _run

NORMS = ("batch", "layer", "instance", "group", "none")


class _Half:
    """What both halves of a block share: a weighted layer, the norm and groups checks,
    ``normalized`` (any norm but ``"none"``), ``stateful`` (batch norm), the norm's width and
    ``apply`` (training-mode :meth:`apply_stats` without statistics)."""

    weighted = True

    def __post_init__(self):
        checks.choice("residual norm", self.norm, NORMS)
        if self.norm == "group":
            norm_lib.check_groups(self.groups, self.features)

    @property
    def normalized(self):
        return self.norm != "none"

    @property
    def stateful(self):
        return self.norm == "batch"

    def norm_features(self, in_shape):
        return self.features

    def apply(self, p, h, op):
        return self.apply_stats(p, h, op, None, True)[0]


@dataclasses.dataclass(frozen=True)
class ResidualIn(_Half):
    """First half of a basic block: (H, W, C) -> (H', W', 2 features), ``[relu(n(conv3x3_s(x))) |
    shortcut(x)]`` with ``n`` batch, layer, instance or group norm (``norm``; ``groups`` for
    ``"group"``) or the identity (``"none"``); shortcut: subsample by the stride, zero-pad
    C -> ``features`` (option A, parameter-free)."""

    features: int
    stride: int = 1
    norm: str = "none"
    groups: int = 8
    def _conv(self):
        return Conv(self.features, (3, 3), (self.stride, self.stride), "SAME")

    def out_shape(self, in_shape):
        if in_shape[-1] > self.features:
            raise InputError(f"residual block cannot shrink channels {in_shape[-1]} -> {self.features}")
        return self._conv().out_shape(in_shape)[:2] + (2 * self.features,)

    def weight_shape(self, in_shape):
        return self._conv().weight_shape(in_shape)

    def init(self, key, in_shape, init_name, dtype):
        return _init_kernel(key, self.weight_shape(in_shape), init_name, dtype)

    def apply_stats(self, p, h, op, stats, train):
        """``([relu(n(conv3x3_s(h))) | shortcut(h)], new_stats)`` (class doc).

        Args:
            p: the block's params: ``"w"`` (3, 3, C, features), ``"b"`` (features,) (+ ``"scale"``,
                ``"shift"`` (features,) with a norm).
            h: (batch, H, W, C) input.
            op: the rule's op (:class:`fa_jax.rules.core.LayerOp`) that runs the conv.
            stats: batch norm's ``{"mean", "var"}`` (features,), or None (batch statistics, none kept).
            train: batch norm by the batch's statistics, updating the running ones (else using them).

        Returns:
            ``(h', new_stats)``: h' (batch, H', W', 2 features); new_stats None unless ``norm="batch"``.
        """
        z, new = _normalize(self, _run(op, self._conv().fn, h, p["w"], p["b"]), p, stats, train)
        s = h[:, :: self.stride, :: self.stride, :]
        s = jnp.pad(s, ((0, 0), (0, 0), (0, 0), (0, self.features - h.shape[-1])))
        return jnp.concatenate([jax.nn.relu(z), s], axis=-1), new


@dataclasses.dataclass(frozen=True)
class ResidualOut(_Half):
    """Second half of a basic block: (H, W, 2 features) ``[a | s]`` -> (H, W, features),
    ``relu(n(conv3x3(a)) + s)`` (``n`` batch, layer, instance or group norm, as
    :class:`ResidualIn`) or ``relu(gain * conv3x3(a) + s)`` (``"none"``: ``gain`` a learned
    scalar, 0 at init, so every block starts as the identity)."""

    features: int
    norm: str = "none"
    groups: int = 8
    def _conv(self):
        return Conv(self.features, (3, 3), (1, 1), "SAME")

    def out_shape(self, in_shape):
        if len(in_shape) != 3 or in_shape[-1] != 2 * self.features:
            raise InputError(f"residual_out({self.features}) must follow residual_in({self.features}), "
                             f"got input shape {tuple(in_shape)}")
        return in_shape[:2] + (self.features,)

    def weight_shape(self, in_shape):
        return (3, 3, self.features, self.features)

    def init(self, key, in_shape, init_name, dtype):
        p = _init_kernel(key, self.weight_shape(in_shape), init_name, dtype)
        return p if self.normalized else {**p, "gain": jnp.zeros((), dtype)}

    def apply_stats(self, p, h, op, stats, train):
        """``(relu(n(conv3x3(a)) + s), new_stats)`` or ``(relu(gain * conv3x3(a) + s), None)`` (class doc).

        Args:
            p: the block's params: ``"w"`` (3, 3, features, features), ``"b"`` (features,), and
                ``"scale"``, ``"shift"`` (features,) (with a norm) or the scalar ``"gain"`` (``"none"``).
            h: (batch, H, W, 2 features) ``[a | s]`` from :class:`ResidualIn`.
            op: the rule's op (:class:`fa_jax.rules.core.LayerOp`) that runs the conv.
            stats: batch norm's ``{"mean", "var"}`` (features,), or None (batch statistics, none kept).
            train: batch norm by the batch's statistics, updating the running ones (else using them).

        Returns:
            ``(h', new_stats)``: h' (batch, H, W, features); new_stats None unless ``norm="batch"``.
        """
        a, s = h[..., : self.features], h[..., self.features :]
        z = _run(op, self._conv().fn, a, p["w"], p["b"])
        z, new = _normalize(self, z, p, stats, train) if self.normalized else (p["gain"] * z, None)
        return jax.nn.relu(z + s), new


def _normalize(half, z, p, stats, train):
    """``(batch_norm(z), new_stats)`` for ``norm="batch"`` (``stats=None``: batch statistics,
    none kept); ``(group_norm(z, groups), None)`` for ``"layer"`` (1 group), ``"instance"``
    (``features`` groups), ``"group"`` (``half.groups``); ``(z, None)`` for ``"none"``."""
    if half.norm == "batch":
        return norm_lib.batch_norm(z, p, stats, train=train)
    groups = {"layer": 1, "instance": half.features, "group": half.groups}.get(half.norm)
    return (z, None) if groups is None else (norm_lib.group_norm(z, p, groups), None)
