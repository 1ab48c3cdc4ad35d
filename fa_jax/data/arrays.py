"""Tasks from your own arrays, checked: ``fj.data.from_arrays(x_train, y_train, x_test, y_test)``.

What it accepts (anything else is a one-line ValueError naming the array, and the value
or index at fault, before anything is compiled):

- x: 2-D ``(n, features)``, or 4-D NHWC ``(n, H, W, C)`` for image models (then
  ``input_shape = (H, W, C)``; a 2-D x with ``input_shape`` given is reshaped to it).
  Integer 2-D x stays integer, as int32 (token ids, e.g. for an ``nn.Embed`` model wrapped with
  ``input_dtype="int32"``; every value must fit in int32); integer images (4-D, or
  ``input_shape`` given: uint8 pixels) and bool x are cast to float32, and so are integer x
  whose other split is real. A model that takes real inputs (``fj.mlp``, a float Flax model)
  trains on integer x as numeric features: :func:`fa_jax.sweep` casts them to its input dtype
  (:func:`for_model`); a model that takes integer token ids refuses real inputs up front
  (:func:`check_input_dtype`).
  Float16 and bfloat16 x are upcast to float32 (lossless; the library computes in float32);
  float64 is kept only with ``jax_enable_x64``, else cast to float32. Complex, object and
  string arrays are refused. Every value must be finite (the error counts the NaN and inf and
  gives the first index).
- y: 1-D ``(n,)`` (``(n, 1)`` is flattened), finite. ``n_out=1`` (binary, one logit, bce):
  labels in {-1, +1}; {0, 1} is accepted and mapped 0 -> -1. ``n_out >= 2``: integer
  class labels in ``[0, n_out)`` (integral floats are accepted). ``n_out=None`` infers it:
  labels all in {-1, +1} make a binary task, otherwise the classes are 0..max(label)
  (so {0, 1} labels give a 2-class softmax task; pass ``n_out=1`` for one sigmoid output).
- Train and test sets both non-empty, with the same example shape.

:func:`check_task` is the cheap subset :func:`fa_jax.sweep` runs on every task it gets.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from fa_jax import checks, losses
from fa_jax.data.task import Task, sample_fixed
from fa_jax.errors import InputError


def from_arrays(x_train: ArrayLike, y_train: ArrayLike, x_test: ArrayLike, y_test: ArrayLike, *,
                n_out: int | None = None, name: str = "arrays", input_shape: Sequence[int] | None = None) -> Task:
    """A fixed-training-set :class:`Task` (mini-batches drawn with replacement) from user arrays.

    A ``batch_size`` larger than ``len(x_train)`` trains full-batch. What each array may be is
    in the module doc.

    Args:
        x_train, x_test: (n, features) or NHWC (n, H, W, C) inputs, the same example shape.
        y_train, y_test: (n,) (or (n, 1)) labels: {-1, +1} or {0, 1} for binary, class ints otherwise.
        n_out: 1 (binary, one logit), the number of classes (>= 2), or None (default): inferred
            from the labels.
        name: the task's name, a non-empty str (default ``"arrays"``).
        input_shape: (H, W, C) to reshape 2-D x to images (default None: x as given).

    Returns:
        A :class:`Task` with arrays on the default device: x float32, or int32 for 2-D integer x
        (see the module doc for dtypes), y float32 in {-1, +1} (binary) or int32 classes; ``default_loss`` bce
        (binary) or softmax_ce; ``input_shape`` set for 4-D x.
    """
    if input_shape is not None:
        input_shape = _check_input_shape(input_shape)
    xs = {"x_train": _as_x("x_train", x_train, input_shape), "x_test": _as_x("x_test", x_test, input_shape)}
    if len({v.dtype.kind == "i" for v in xs.values()}) > 1:  # one split real: numeric features, not token ids
        xs = {k: v.astype(np.float32) if v.dtype.kind == "i" else v for k, v in xs.items()}
    if xs["x_train"].shape[1:] != xs["x_test"].shape[1:]:
        raise InputError(f"x_train examples have shape {xs['x_train'].shape[1:]} but x_test examples "
                         f"{xs['x_test'].shape[1:]}")
    ys = {k: _as_y(k, y, len(xs["x" + k[1:]])) for k, y in (("y_train", y_train), ("y_test", y_test))}
    n_out = _n_out(ys, n_out)
    ys = {k: _labels(k, y, n_out) for k, y in ys.items()}
    shape = xs["x_train"].shape[1:]
    if not isinstance(name, str) or not name:
        raise InputError(f"name must be a non-empty str, got {name!r}")
    return Task(x_test=jnp.asarray(xs["x_test"]), y_test=jnp.asarray(ys["y_test"]),
                x_train=jnp.asarray(xs["x_train"]), y_train=jnp.asarray(ys["y_train"]), name=name,
                n_in=math.prod(shape), n_out=n_out, default_loss="bce" if n_out == 1 else "softmax_ce",
                sampler=sample_fixed, input_shape=tuple(shape) if len(shape) == 3 else None)


def _check_input_shape(shape):
    s = tuple(shape) if isinstance(shape, (tuple, list)) else None
    if s is None or len(s) != 3 or not all(checks.is_positive_int(d, numpy=True) for d in s):
        raise InputError(f"input_shape must be (H, W, C) positive ints, got {shape!r}")
    return tuple(int(d) for d in s)


def _float_dtype():
    return np.float64 if jax.config.jax_enable_x64 else np.float32


def _as_x(name, x, input_shape):
    """``x`` as a finite numpy array (n, d) or (n, H, W, C): float, or int32 token ids (the dtype rules of the
    module doc)."""
    try:
        a = np.asarray(x)
    except Exception as err:  # noqa: BLE001  (ragged lists, unconvertible objects)
        raise InputError(f"{name} is not an array ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    kind = a.dtype.kind
    if kind in "iu" and a.ndim != 4 and input_shape is None:  # token ids
        a = _int32(name, a)
    elif kind in "biu":  # pixels, flags
        a = a.astype(np.float32)
    elif kind == "f" or jnp.issubdtype(a.dtype, jnp.floating):  # bfloat16 (ml_dtypes) is kind "V"
        a = a.astype(np.float32 if a.dtype.itemsize < 4 else _float_dtype())
    else:
        raise InputError(f"{name} has dtype {a.dtype}; inputs must be real numbers (int, bool or float)")
    if a.ndim == 2 and input_shape is not None:
        if a.shape[1] != math.prod(input_shape):
            raise InputError(f"{name} has {a.shape[1]} features; input_shape {input_shape} needs "
                             f"{math.prod(input_shape)}")
        a = a.reshape((a.shape[0],) + input_shape)
    if a.ndim not in (2, 4):
        raise InputError(f"{name} must be 2-D (n, features) or 4-D NHWC (n, H, W, C), got shape {a.shape}")
    if a.ndim == 4 and input_shape is not None and a.shape[1:] != input_shape:
        raise InputError(f"{name} has images of shape {a.shape[1:]}, input_shape is {input_shape}")
    if a.shape[0] == 0:
        raise InputError(f"{name} is empty (shape {a.shape}); need at least one example")
    if 0 in a.shape[1:]:
        raise InputError(f"{name} has examples of shape {a.shape[1:]} (no features)")
    _finite(name, a)
    return a


def _int32(name, a):
    info = np.iinfo(np.int32)
    if a.size and (a.min() < info.min or a.max() > info.max):
        i = int(np.argmax((a < info.min) | (a > info.max)))
        raise InputError(f"{name} holds {a.flat[i].item()!r}, outside int32: integer x is kept as int32 token ids; "
                         f"pass x.astype('float32') for numeric features")
    return a.astype(np.int32)


def _finite(name, a):
    bad = ~np.isfinite(a)
    if bad.any():
        n_nan = int(np.isnan(a).sum())
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name} has {n_nan} NaN and {int(bad.sum()) - n_nan} inf values (first at index "
                         f"{first[0] if len(first) == 1 else first}); remove or impute them")


def _as_y(name, y, n):
    a = np.asarray(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise InputError(f"{name} must be 1-D (n,) labels, got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name} has dtype {a.dtype}; labels must be numbers")
    if len(a) != n:
        raise InputError(f"{name} has {len(a)} labels for {n} examples in x{name[1:]}")
    _finite(name, a)
    return a


def _n_out(ys, n_out):
    if n_out is not None:
        checks.positive_int("n_out", n_out, none=True, numpy=True)
        return int(n_out)
    values = np.concatenate([y.astype(np.float64) for y in ys.values()])
    if np.all(np.abs(values) == 1):
        return 1
    return max(int(values.max()) + 1, 2)  # _labels names any negative or fractional label


def _labels(name, y, n_out):
    """Binary: float32 in {-1, +1} ({0, 1} mapped); classes: int32 in [0, n_out)."""
    yf = y.astype(np.float64)
    if n_out == 1:
        bad = ~np.isin(yf, (-1.0, 0.0, 1.0))
        if not bad.any() and (yf == 0).any() and (yf == -1).any():
            bad = yf == 0
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{name}[{i}] = {y[i].item()!r} is not a binary label: n_out=1 needs labels in {{-1, +1}} "
                             f"(or {{0, 1}}, mapped 0 -> -1); pass n_out=<classes> for integer class labels")
        return np.where(yf == 0, -1.0, yf).astype(np.float32)
    bad = (yf != np.round(yf)) | (yf < 0) | (yf >= n_out)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name}[{i}] = {y[i].item()!r} is out of range: labels must be integers in [0, {n_out}) "
                         f"for n_out={n_out}")
    return yf.astype(np.int32)


_WARNED = set()


def check_task(task: Task, batch_size: int | None = None, loss: str | None = None,
               label_smoothing: float = 0.0) -> None:
    """One-line ValueError for a task that would train on nothing or on garbage; cheap (a few
    reductions on the device, no training program is compiled).

    Checks x_test/y_test, and x_train/y_train and ``aux`` x_val/y_val when present: non-empty,
    matching lengths, finite values; 1-D labels of a multi-output task are integers in
    ``[0, n_out)``; a one-output task trained with ``loss`` bce or hinge (default: the task's)
    has labels +-1; 2-D integer labels are token labels (``fa_jax.losses``): in ``[-1, n_out)``,
    trained with softmax_ce and no ``label_smoothing``; loss spectral_mse needs float targets
    (n, n_out) (:func:`fa_jax.losses.check_spectral`). With a fixed training set smaller than
    ``batch_size`` it warns once that every step is full-batch gradient descent
    (:func:`fa_jax.data.sample_fixed`).
    """
    loss = loss or task.default_loss
    aux = task.aux if isinstance(task.aux, dict) else {}
    for xn, yn, x, y in (("x_test", "y_test", task.x_test, task.y_test),
                         ("x_train", "y_train", task.x_train, task.y_train),
                         ("x_val", "y_val", aux.get("x_val"), aux.get("y_val"))):
        if x is None:
            continue
        n, m = (int(np.shape(a)[0]) if np.ndim(a) else 0 for a in (x, y))
        if n == 0:
            raise InputError(f"task {task.name!r} has an empty {xn[2:]} set ({xn} has shape {tuple(np.shape(x))})")
        if n != m:
            raise InputError(f"task {task.name!r}: {xn} has {n} examples but {yn} has {m} labels")
        for nm, a in ((xn, x), (yn, y)):
            if jnp.issubdtype(jnp.result_type(a), jnp.inexact) and not bool(jnp.isfinite(a).all()):
                raise InputError(_nonfinite(task.name, nm, a))
        if loss == "spectral_mse":  # real-valued targets shaped like the (n, n_out) logits
            try:
                losses.check_spectral((n, task.n_out), np.shape(y), jnp.result_type(y))
            except ValueError as err:
                raise InputError(f"task {task.name!r}: {yn}: {err}") from None
        _check_labels(task, yn, y, loss, label_smoothing)
    n = task.n_train
    if (batch_size is not None and n is not None and batch_size > n and task.sampler is sample_fixed
            and (task.name, n, batch_size) not in _WARNED):
        _WARNED.add((task.name, n, batch_size))
        warnings.warn(f"batch_size={batch_size} > the {n} training examples of task {task.name!r}: every step "
                      f"uses the whole training set (full-batch gradient descent)", stacklevel=3)


def check_input_dtype(model: object, task: Task) -> None:
    """One-line InputError if ``model`` takes integer token ids (an integer ``input_dtype``, e.g.
    ``fj.from_flax(..., input_dtype="int32")``) and ``task``'s inputs are real. Integer inputs for a
    model that takes real ones are numeric features (:func:`for_model`). Only dtypes are read."""
    want = jnp.dtype(getattr(model, "input_dtype", "float32"))
    got = jnp.result_type(task.x_test)
    if jnp.issubdtype(want, jnp.integer) and not jnp.issubdtype(got, jnp.integer):
        raise InputError(f"the model takes integer token ids ({want.name}) but task {task.name!r} has {got.name} "
                         f"inputs: build the task from an integer array of token ids (fj.data.from_arrays keeps "
                         f"integer x integer)")


def for_model(model: object, task: Task) -> Task:
    """``task`` with its integer inputs (``x_test``, a fixed ``x_train``) cast to ``model``'s real
    input dtype (float32 unless the model says otherwise) when the model takes real inputs;
    ``task`` itself otherwise (token ids for an integer model, real inputs already)."""
    want = jnp.dtype(getattr(model, "input_dtype", "float32"))
    if jnp.issubdtype(want, jnp.integer) or not jnp.issubdtype(jnp.result_type(task.x_test), jnp.integer):
        return task
    cast = {k: getattr(task, k).astype(want) for k in ("x_test", "x_train") if getattr(task, k) is not None}
    return dataclasses.replace(task, **cast)


def _nonfinite(task_name, name, a) -> str:
    bad = ~jnp.isfinite(a)
    n_nan, n_bad = int(jnp.isnan(a).sum()), int(bad.sum())
    first = tuple(int(i) for i in jnp.argwhere(bad, size=1)[0])
    return (f"task {task_name!r}: {name} has {n_nan} NaN and {n_bad - n_nan} inf values (first at index "
            f"{first[0] if len(first) == 1 else first}); remove or impute them")


def _check_labels(task, name, y, loss, label_smoothing=0.0):
    tokens = np.ndim(y) == 2 and jnp.issubdtype(jnp.result_type(y), jnp.integer)
    if np.ndim(y) != 1 and not tokens:
        return  # one-hot or real-valued targets: only finiteness is checked
    if tokens:
        if loss != "softmax_ce" or label_smoothing:
            what = f"loss {loss!r}" if loss != "softmax_ce" else f"label_smoothing={label_smoothing!r}"
            raise InputError(f"task {task.name!r} has token labels ({name} of shape {tuple(np.shape(y))}): token "
                             f"tasks take loss 'softmax_ce' without label smoothing, got {what}")
        bad = (y < -1) | (y >= task.n_out)
        what = f"token labels must be integers in [-1, {task.n_out}) for n_out={task.n_out} (-1: not scored)"
    elif task.n_out >= 2:
        yf = jnp.asarray(y, jnp.float32)
        bad = (yf != jnp.round(yf)) | (yf < 0) | (yf >= task.n_out)
        what = f"class labels must be integers in [0, {task.n_out}) for n_out={task.n_out}"
    elif loss in ("bce", "hinge"):
        bad = jnp.abs(jnp.asarray(y, jnp.float32)) != 1
        what = f"binary labels must be -1 or +1 for loss {loss!r} (fj.data.from_arrays maps {{0, 1}})"
    else:
        return
    if bool(bad.any()):
        i = np.unravel_index(int(jnp.argmax(bad.ravel())), bad.shape)
        at = ", ".join(str(int(j)) for j in i)
        raise InputError(f"task {task.name!r}: {name}[{at}] = {np.asarray(y[i]).item()!r} is out of range: {what}")
