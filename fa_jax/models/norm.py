"""Normalization layers as pure functions: layer, group and instance norm, and batch norm with explicit state.

- ``layer_norm``: per example, ``(a - mean_f a) / sqrt(var_f a + eps) * scale + shift``
  over the feature axis (Ba et al. 2016); the same at train and test time.
- ``group_norm``: per example, the C channels of a (batch, ..., C) input split into
  ``groups`` runs of C/groups consecutive channels; each run is normalized over itself and
  every spatial axis, then scaled and shifted per channel (Wu & He 2018). ``groups=1`` is
  layer norm over (H, W, C) (per-channel affine); ``instance_norm`` is ``groups=C``, per
  example and channel over H, W (Ulyanov et al. 2016). Biased variance as ``layer_norm``,
  the same at train and test time, no running state.
- ``batch_norm``: per feature, over the batch (and over H, W for NHWC images: per
  channel; Ioffe & Szegedy 2015). Training uses the batch's statistics and returns updated
  running statistics ``running = momentum * running + (1 - momentum) * batch``
  (unbiased batch variance, as PyTorch); evaluation uses the running statistics and
  returns the state unchanged. The running statistics are an explicit state pytree, never a param.

Normalization sits between a layer's affine map and its activation. Under FA the layer's
own backward (through the normalization's exact Jacobian and the activation) is unchanged;
only what the affine map sends to its *input* is replaced by ``delta B^T``. Under DFA the
signal ``e B_l`` arrives at the layer's output and flows through the activation and the
normalization's exact Jacobian to W_l and b_l. Scales and shifts are never weight-decayed.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import checks
from fa_jax.errors import InputError


def init_norm(n: int, dtype: DTypeLike = jnp.float32) -> dict[str, jax.Array]:
    """Affine params of a normalization over n features: scale ones (n,), shift zeros (n,)."""
    return {"scale": jnp.ones((n,), dtype), "shift": jnp.zeros((n,), dtype)}


def init_batch_stats(n: int, dtype: DTypeLike = jnp.float32) -> dict[str, jax.Array]:
    """Running statistics of batch norm: mean zeros (n,), var ones (n,)."""
    return {"mean": jnp.zeros((n,), dtype), "var": jnp.ones((n,), dtype)}


def layer_norm(a: jax.Array, params: dict[str, jax.Array], eps: float = 1e-5) -> jax.Array:
    """a: (..., n) -> (..., n), normalized over the last axis then scaled and shifted."""
    mu = a.mean(-1, keepdims=True)
    var = a.var(-1, keepdims=True)
    return (a - mu) / jnp.sqrt(var + eps) * params["scale"] + params["shift"]


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def check_groups(groups: int, n: int, what: str = "channels") -> None:
    """One-line ValueError unless ``groups`` is a positive int dividing ``n`` (the message lists n's divisors)."""
    checks.positive_int("groups", groups)
    if n % groups:
        raise InputError(f"groups={groups} does not divide {n} {what}; use a divisor of {n}: {_divisors(n)}")


def group_norm(a: jax.Array, params: dict[str, jax.Array], groups: int, eps: float = 1e-5) -> jax.Array:
    """Group norm (Wu & He 2018): per example, over the spatial axes and each group of
    C/groups consecutive channels; then ``* scale + shift`` per channel.

    ``out[n, ..., c] = (a[n, ..., c] - mu[n, g]) / sqrt(var[n, g] + eps) * scale[c] + shift[c]``
    with g = c // (C / groups) and mu, var the mean and biased variance of
    ``a[n, ..., g C/groups : (g + 1) C/groups]``. A wrong rank, params shape or a ``groups``
    that is not a positive int dividing C is a one-line error.

    Args:
        a: (batch, C), (batch, H, W, C) (or any (batch, ..., C)) pre-activations.
        params: ``{"scale", "shift"}`` (C,) (:func:`init_norm`).
        groups: a positive int dividing C; 1 is layer norm over (..., C), C is instance norm.
        eps: added to the variance (default 1e-5).

    Returns:
        out like a.
    """
    shape = tuple(getattr(a, "shape", ()))
    if len(shape) < 2:
        raise InputError(f"group norm needs a (batch, ..., channels) input, got shape {shape}")
    c = shape[-1]
    check_groups(groups, c)
    for k in ("scale", "shift"):
        got = tuple(jnp.shape(params[k]))
        if got != (c,):
            raise InputError(f"group-norm params[{k!r}] has shape {got}, input has {c} channels (input shape {shape})")
    g = a.reshape(shape[:-1] + (groups, c // groups))
    axes = tuple(range(1, len(shape) - 1)) + (len(shape),)  # spatial axes and the channels within a group
    mu = g.mean(axes, keepdims=True)
    var = g.var(axes, keepdims=True)
    return ((g - mu) / jnp.sqrt(var + eps)).reshape(shape) * params["scale"] + params["shift"]


def instance_norm(a: jax.Array, params: dict[str, jax.Array], eps: float = 1e-5) -> jax.Array:
    """Instance norm (Ulyanov et al. 2016): :func:`group_norm` with one group per channel, i.e.
    per example and channel over H, W. a: (batch, H, W, C) (at least one spatial axis; a flat
    (batch, C) input has one value per channel, a one-line error). Returns out like a."""
    shape = tuple(getattr(a, "shape", ()))
    if len(shape) < 3:
        raise InputError(f"instance norm needs a (batch, H, W, channels) input, got shape {shape}: on a flat input "
                         f"each channel is a single value (use layer or group norm)")
    return group_norm(a, params, shape[-1], eps)


def batch_norm(a: jax.Array, params: dict[str, jax.Array], stats: dict[str, jax.Array] | None, *, train: bool,
               momentum: float = 0.9, eps: float = 1e-5) -> tuple[jax.Array, dict[str, jax.Array] | None]:
    """Batch norm per feature (last axis), over every other axis (batch, and H, W for images:
    per channel, as PyTorch's BatchNorm2d); the formulas are in the module docstring.

    Unbiased variance divides by ``N - 1`` with N the number of reduced entries
    (``batch * H * W``). A wrong rank or feature count is a one-line error.

    Args:
        a: (batch, n) or (batch, H, W, n) pre-activations.
        params: ``{"scale", "shift"}`` (n,).
        stats: ``{"mean", "var"}`` (n,) running statistics, or ``None`` in train mode (no
            running statistics kept).
        train: use the batch's statistics and update the running ones; else use the running ones.
        momentum: in [0, 1), the running statistics' weight on their old value (default 0.9).
        eps: added to the variance (default 1e-5).

    Returns:
        ``(out like a, new_stats)``: new_stats None when ``stats`` is None, ``stats`` itself in eval mode.
    """
    checks.number_in("batch-norm momentum", momentum, 0, 1)
    shape = tuple(getattr(a, "shape", ()))
    if len(shape) < 2:
        raise InputError(f"batch norm needs a (batch, ..., features) input, got shape {shape}")
    for name, tree, keys in (("params", params, ("scale", "shift")), ("stats", stats, ("mean", "var"))):
        for k in () if tree is None else keys:
            got = tuple(jnp.shape(tree[k]))
            if got != shape[-1:]:
                raise InputError(f"batch-norm {name}[{k!r}] has shape {got}, input has {shape[-1]} features "
                                 f"(input shape {shape})")
    if train:
        axes = tuple(range(len(shape) - 1))
        mu, var = a.mean(axes), a.var(axes)
        n = math.prod(shape[:-1])
        unbiased = var * n / max(n - 1, 1)
        new = None if stats is None else {"mean": momentum * stats["mean"] + (1 - momentum) * mu,
                                          "var": momentum * stats["var"] + (1 - momentum) * unbiased}
    elif stats is None:
        raise InputError("batch norm in eval mode (train=False) needs running statistics, got stats=None")
    else:
        mu, var, new = stats["mean"], stats["var"], stats
    return (a - mu) / jnp.sqrt(var + eps) * params["scale"] + params["shift"], new
