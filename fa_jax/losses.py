"""Losses by name, each ``loss(logits, labels) -> scalar`` (mean over the batch).

Label conventions, shared by every task in ``fa_jax.data``:
- binary tasks: ``logits`` (batch, 1), ``labels`` (batch,) in {-1, +1};
- multi-class tasks: ``logits`` (batch, C), ``labels`` integer (batch,) or one-hot (batch, C);
- regression on signals (:func:`spectral_mse`): real-valued targets (batch, T) shaped like the
  ``logits``;
- token (sequence) tasks: ``logits`` (batch, T, V), ``labels`` integer (batch, T) (any
  integer labels with ``ndim >= 2`` and one fewer axis than ``logits``); a position labelled
  -1 is not scored. Only :func:`softmax_ce` takes them (the mean over the scored positions);
  :func:`accuracy` gives each sequence's fraction of scored positions right, whose batch mean
  is the per-token accuracy when every sequence has as many scored positions (as in the
  tasks of ``fa_jax.data``).
The per-example formulas are optax's (``optax.losses``) wherever optax has them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from jax.typing import DTypeLike

from fa_jax import checks, registry
from fa_jax.errors import InputError
from fa_jax.registry import lookup

Loss = Callable[[jax.Array, jax.Array], jax.Array]  # loss(logits, labels) -> scalar


def _targets(logits, labels):
    """Real-valued targets shaped like ``logits``: ±1 for binary, one-hot for classes."""
    if logits.shape[-1] == 1 and labels.ndim == logits.ndim - 1:
        return labels[..., None].astype(logits.dtype)
    if labels.ndim == logits.ndim:
        return labels.astype(logits.dtype)
    return jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)


def mse(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """mean_i sum_j (z_ij - t_ij)^2 with ±1 / one-hot targets t."""
    return optax.losses.squared_error(logits, _targets(logits, labels)).sum(-1).mean()


def mae(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """mean_i sum_j |z_ij - t_ij|."""
    return jnp.abs(logits - _targets(logits, labels)).sum(-1).mean()


def _tokens(logits, labels) -> bool:
    """Token labels (batch, T, ...): labels of ndim >= 2 with one axis fewer than the logits."""
    return labels.ndim >= 2 and labels.ndim == logits.ndim - 1


def softmax_ce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy with integer (batch,) or one-hot (batch, C) labels, or token labels
    (batch, T) with logits (batch, T, V): the mean over the positions with a label >= 0."""
    if logits.shape[-1] == 1:
        raise InputError("softmax_ce needs >= 2 outputs; use 'bce' for a single-logit binary task")
    if labels.ndim == logits.ndim:
        return optax.losses.softmax_cross_entropy(logits, labels).mean()
    if _tokens(logits, labels):
        labels = labels.astype(jnp.int32)
        mask = labels >= 0
        ce = optax.losses.softmax_cross_entropy_with_integer_labels(logits, jnp.where(mask, labels, 0))
        mask = mask.astype(ce.dtype)
        return (ce * mask).sum() / jnp.maximum(mask.sum(), 1)
    return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32)).mean()


def bce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Sigmoid binary cross-entropy; targets (y + 1) / 2 for ±1 labels, one-hot for classes.

    For one logit z and target t: -t log s(z) - (1 - t) log(1 - s(z)); dL/dz = s(z) - t
    (the thesis chapter's ``y_hat - y``).
    """
    t = _targets(logits, labels)
    if logits.shape[-1] == 1 and labels.ndim == logits.ndim - 1:
        t = (t + 1.0) / 2.0
    return optax.losses.sigmoid_binary_cross_entropy(logits, t).sum(-1).mean()


def hinge(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Binary: max(0, 1 - y z); multi-class: Crammer-Singer (``optax.losses.multiclass_hinge_loss``)."""
    if logits.shape[-1] == 1:
        return optax.losses.hinge_loss(logits[..., 0], labels.astype(logits.dtype)).mean()
    if labels.ndim == logits.ndim:
        labels = labels.argmax(-1)
    return optax.losses.multiclass_hinge_loss(logits, labels.astype(jnp.int32)).mean()


def cosine(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """1 - cos(z, t) with ±1 / one-hot targets t (``optax.losses.cosine_distance``)."""
    return optax.losses.cosine_distance(logits, _targets(logits, labels)).mean()


def check_spectral(logits_shape: Sequence[int], labels_shape: Sequence[int], labels_dtype: DTypeLike) -> None:
    """One-line ValueError unless :func:`spectral_mse` accepts these: real-valued (float) targets
    of the logits' shape ``(batch, T)`` (or ``(batch, ..., T)``)."""
    logits_shape, labels_shape = tuple(logits_shape), tuple(labels_shape)
    if len(logits_shape) < 2:
        raise InputError(f"spectral_mse needs logits (batch, T), got shape {logits_shape}")
    if not jnp.issubdtype(labels_dtype, jnp.floating):
        raise InputError(f"spectral_mse needs real-valued (float) targets of the logits' shape {logits_shape}; got "
                         f"{jnp.dtype(labels_dtype).name} labels of shape {labels_shape} (class labels: use "
                         f"softmax_ce or mse)")
    if labels_shape != logits_shape:
        raise InputError(f"spectral_mse needs targets of the logits' shape {logits_shape} (batch, T); got "
                         f"targets of shape {labels_shape}")


def spectral_mse(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Spectral MSE, the thesis chapter's eq. (4.17): MSE between DFT magnitudes along the last axis.

    logits, labels: real (batch, T) (or (batch, ..., T)) of one shape; labels are the real-valued
    signals to predict (not class labels). With ``Y = rfft(labels)`` and ``Z = rfft(logits)``
    (numpy's unnormalised DFT ``Y[k] = sum_n y[n] exp(-2 pi i k n / T)``, the K = T // 2 + 1
    bins k = 0..T//2 of a real signal):

        loss = mean_batch (1 / K) sum_k (|Z[k]| - |Y[k]|)^2

    i.e. the mean over the batch and over the K frequencies, as the chapter's (1/K) sum_k. The
    phase of each bin is ignored, so a circularly shifted target gives the same loss. The
    gradient at a bin where ``Z[k] = 0`` exactly is finite: jax differentiates ``|z|`` there as 0
    (no epsilon is added; tested at all-zero logits).
    """
    check_spectral(logits.shape, labels.shape, labels.dtype)
    mag = jnp.abs(jnp.fft.rfft(logits, axis=-1))
    return jnp.mean((mag - jnp.abs(jnp.fft.rfft(labels.astype(logits.dtype), axis=-1))) ** 2)


LOSSES: dict[str, Loss] = {"mse": mse, "mae": mae, "softmax_ce": softmax_ce, "bce": bce, "hinge": hinge,
                           "cosine": cosine, "spectral_mse": spectral_mse}


def register(name: str, loss: Loss, *, replace: bool = False) -> Loss:
    """Add ``loss(logits, labels) -> scalar`` to :data:`LOSSES` as ``name`` (for ``fj.sweep(loss=)``);
    a name already registered is refused unless ``replace=True``. Returns ``loss``."""
    return registry.add(LOSSES, name, loss, what="loss", replace=replace)


def get(name: str) -> Loss:
    """Loss by name; unknown names list the known ones."""
    return lookup(LOSSES, name, "loss")


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example correctness (batch,): sign for one logit (z > 0 <-> +1), argmax otherwise;
    token labels (batch, T): each sequence's fraction of scored positions (label >= 0) whose
    argmax is right, 0 for a sequence with none scored."""
    if logits.shape[-1] == 1:
        return ((logits[..., 0] > 0) == (labels > 0)).astype(jnp.float32)
    if _tokens(logits, labels):
        mask = labels >= 0
        axes = tuple(range(1, labels.ndim))
        hits = ((logits.argmax(-1) == labels) & mask).sum(axes)
        return (hits / jnp.maximum(mask.sum(axes), 1)).astype(jnp.float32)
    if labels.ndim == logits.ndim:
        labels = labels.argmax(-1)
    return (logits.argmax(-1) == labels).astype(jnp.float32)


def check_label_smoothing(alpha: float, n_out: int) -> float:
    """``alpha`` as a float in [0, 1); smoothing (alpha > 0) needs a multi-class output (n_out >= 2)."""
    checks.number_in("label_smoothing", alpha, 0, 1)
    if alpha and n_out < 2:
        raise InputError(f"label_smoothing={alpha!r} needs >= 2 outputs (classes); this task has {n_out}")
    return float(alpha)


def smoothed(loss_fn: Loss, alpha: float) -> Loss:
    """``loss_fn`` on smoothed one-hot targets ``(1 - alpha) onehot + alpha / C``
    (``optax.smooth_labels``); logits (batch, C >= 2), labels integer (batch,) or one-hot."""

    def loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
        if labels.ndim != logits.ndim:
            labels = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
        return loss_fn(logits, optax.smooth_labels(labels.astype(logits.dtype), alpha))

    return loss
