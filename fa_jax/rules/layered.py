"""A layered model's own forward pass, run layer by layer under a rule's control, and what the rules
built on it share.

The rules that learn without a global backward pass (:mod:`fa_jax.rules.local`,
:mod:`fa_jax.rules.forward_forward`, :mod:`fa_jax.rules.perturbation`, :mod:`fa_jax.rules.fg_local`)
need more than the logits of one wired pass: every block's output (its own loss), every weighted
map's output ``z_l = h W_l + b_l`` (to perturb it, or to send it an estimated gradient), a pass with
each block's input detached. :func:`forward` runs the model's own ``apply`` (so its normalization,
dropout, batch-norm statistics and input checks act as in any run) with a throwaway wiring whose
``wire(layers, params, x)`` the rule writes, and hands back what that wiring returned beside the
logits; :func:`block_pass` is the one wiring those rules use. :class:`Shifted` is the op that adds a
fixed array to a weighted map's output and records the output; :class:`ForwardMode` the same op
that ``jax.jvp`` can enter. :func:`model_check` is their one model check, :func:`classes` their one
reading of class labels.

Conventions: ``layers[l](p, h, op) -> h'`` (:mod:`fa_jax.models.contract`), at most one weighted map
per layer; params one entry per layer; a rule's extras (``Rule.init_params``) are extra keys of a
layer's dict that the layers do not read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.rules.core import normalize
from fa_jax.rules.ops import Map
from fa_jax.rules.rule import Batch, Rule

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

# the keys of a layer's dict that fa_jax's layers read: its weighted map's (w, b), not a normalization's
MAP_KEYS = ("w", "b")
sg = jax.lax.stop_gradient


def check_layered(model: Model, rule: str) -> None:
    """One-line InputError unless ``model`` is a layered model (``model.layers``: fj.mlp, norm_mlp,
    the conv nets), which the rule ``rule`` runs block by block."""
    if getattr(model, "layers", None) is None:
        raise InputError(f"rule {rule!r} runs a model block by block and needs a layered model (fj.mlp, "
                         f"fj.norm_mlp, a conv net from fa_jax.models.cnn); {type(model).__name__} has no layers")


def check_map_params(model: Model, rule: str, what: str) -> None:
    """One-line InputError when a layer of ``model`` has params besides its weighted map's (a
    normalization's scale and shift, prelu's alpha): ``rule`` sends its estimate to the maps'
    outputs ``z_l`` only (``what``), so those params would get no update."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    others = sorted({k for p in shapes for k in (p if isinstance(p, dict) else {}) if k not in MAP_KEYS})
    if others:
        raise InputError(f"rule {rule!r} {what}, so params {others} of this model would get no update: use a "
                         f"model without them (no normalization, no prelu) or fg(kind=weight)")


def model_check(spec: str, *, heads: bool = False, maps: bool = False) -> Callable[[Model], None]:
    """A rule's ``check_model``: one-line InputError unless the model is layered; with ``heads``
    it also needs ``hidden_shapes`` (the sizes of local heads), with ``maps`` params ``w``, ``b``
    only (:func:`check_map_params`). Messages name the rule by ``spec``'s normal form."""

    def check(model: Model) -> None:
        name = normalize(spec)
        check_layered(model, name)
        if heads:
            contract.hidden_shapes(model, f"rule {name!r} (its local pred heads)")
        if maps:
            check_map_params(model, name, "sends its estimate to the weighted maps' outputs z_l only")

    return check


def forward(model: Model, params: Any, x: jax.Array, wire: Callable[[Sequence, Sequence, jax.Array], tuple],
            *, stats: Any = None, key: jax.Array | None = None, train: bool = True) -> tuple[Any, Any, Any]:
    """``(logits, new_stats, extra)``: ``model.apply`` with ``wire(layers, params, x) -> (y, extra)``
    as its wiring.

    ``layers`` are the model's own (train mode: batch statistics; dropout keyed by ``key`` for a
    stochastic model), ``params`` the model's params as given (extras included). ``stats``: a
    stateful model's running statistics (required for one), ``new_stats`` its new ones, else None.
    ``extra`` is whatever ``wire`` returned beside ``y`` (a pytree of arrays of the same trace).
    """
    box = []

    def wiring(layers, ps, h, feedback):
        del feedback
        y, extra = wire(list(layers), list(ps), h)
        box.append(extra)
        return y

    kw = {}
    if contract.is_stochastic(model):
        kw.update(train=train, key=key)
    if stats is not None:
        kw.update(train=train, stats=stats)
    out = model.apply(params, x, rule=Rule("layered", wire=wiring), feedback=None, **kw)
    y, new_stats = out if stats is not None else (out, None)
    return y, new_stats, box[0]


def batch_forward(model: Model, params: Any, batch: Batch, wire: Callable, key: jax.Array | None = None,
                  train: bool = True) -> tuple[Any, Any, Any]:
    """:func:`forward` on ``batch.x`` with the batch's statistics ``batch.stats``."""
    return forward(model, params, batch.x, wire, stats=batch.stats, key=key, train=train)


class Shifted:
    """BP's op with ``shift`` added to the weighted map's output ``z = h W + b`` (a perturbation,
    a label's weights), which it also records in ``self.z`` (the unshifted ``z``). One map per op:
    a second call is a one-line InputError (its shift would be added twice)."""

    def __init__(self, shift: jax.Array | None = None):
        self.shift = shift
        self.z = None

    def _out(self, z: jax.Array) -> jax.Array:
        if self.z is not None:
            raise InputError("a layer ran two weighted maps through one Shifted op (its shift would be added "
                             "twice): the layered rules take at most one weighted map per layer")
        self.z = z
        return z if self.shift is None else z + self.shift.astype(z.dtype)

    def __call__(self, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return self._out(h @ w + b)

    def apply(self, fn: Map, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return self._out(fn(h, w) + b)

    def output(self, layer: int) -> jax.Array:
        """The recorded ``z`` of layer ``layer``; a one-line InputError when it ran no weighted map."""
        if self.z is None:
            raise InputError(f"layer {layer} of this model ran no weighted map through its op, so it has no output "
                             f"z_{layer} to shift or record: these rules need one weighted map per layer")
        return self.z


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def bilinear(fn: Map, h: jax.Array, w: jax.Array) -> jax.Array:
    """``fn(h, w)`` for a map bilinear in ``(h, w)`` (a conv: fa_jax's is a ``custom_vjp``, which
    forward mode cannot enter), with its tangent written out: ``fn(dh, w) + fn(h, dw)``."""
    return fn(h, w)


@bilinear.defjvp
def _bilinear_jvp(fn, primals, tangents):
    (h, w), (dh, dw) = primals, tangents
    return fn(h, w), fn(dh, w) + fn(h, dw)


class ForwardMode(Shifted):
    """:class:`Shifted` whose non-dense maps run through :func:`bilinear`: a pass ``jax.jvp`` can enter."""

    def apply(self, fn, h, w, b):
        return self._out(bilinear(fn, h, w) + b)


def block_pass(model: Model, params: Any, batch: Batch, key: jax.Array | None, *, shifts: list | None = None,
               detach: bool = False, jvp: bool = False, maps: bool = False) -> tuple[Any, Any, Any, list]:
    """``(logits, stats, zs, hs)``: the model's forward (:func:`batch_forward`, train mode) layer by layer.

    ``shifts[l]`` (None: none) is added to layer l's map output ``z_l``; ``detach`` puts every
    block's input behind ``stop_gradient`` (no gradient, nor tangent, crosses a block boundary);
    ``jvp`` runs every map through :class:`ForwardMode`. ``zs``: every map's output ``z_l`` (B, ...),
    unshifted, when ``maps`` or ``shifts`` (a one-line InputError for a layer without a map), else
    None; ``hs``: the hidden blocks' outputs ``h_1..h_{L-1}`` (B, ...).
    """
    op = ForwardMode if jvp else Shifted
    record = maps or shifts is not None

    def wire(layers, ps, h):
        zs, hs = [], []
        for i, (layer, p) in enumerate(zip(layers, ps)):
            o = op(None if shifts is None else shifts[i])
            h = layer(p, sg(h) if detach else h, o)
            if record:
                zs.append(o.output(i))
            hs.append(h)
        return h, (zs if record else None, hs[:-1])

    logits, stats, (zs, hs) = batch_forward(model, params, batch, wire, key)
    return logits, stats, zs, hs


def map_shapes(model: Model, params: Any, x: jax.Array) -> list[tuple[int, ...]]:
    """The shape of every weighted map's output ``z_l`` (batch axes included) for inputs ``x``:
    one abstract pass, nothing computed."""

    def shapes(p, xx):
        stats = model.init_stats() if contract.is_stateful(model) else None
        return block_pass(model, p, Batch(xx, None, None, stats), jax.random.key(0), maps=True)[2]

    return [tuple(s.shape) for s in jax.eval_shape(shapes, params, x)]


def normals(key: jax.Array, zs: Sequence[jax.Array], lead: tuple = ()) -> list[jax.Array]:
    """``N(0, I)`` draws shaped ``(*lead, *z.shape)`` per array of ``zs``, one key each (split from ``key``)."""
    keys = jax.random.split(key, len(zs))
    return [jax.random.normal(k, (*lead, *z.shape), z.dtype) for k, z in zip(keys, zs)]


def per_example(d: jax.Array, z: jax.Array) -> jax.Array:
    """``d`` (B,) reshaped to broadcast over ``z`` (B, ...), in ``z``'s dtype."""
    return d.reshape(d.shape + (1,) * (z.ndim - 1)).astype(z.dtype)


def per_example_loss(loss: Callable, logits: jax.Array, y: jax.Array) -> jax.Array:
    """``(batch,)`` losses whose mean is ``loss(logits, y)`` (a batch-mean loss, applied to each
    example as a batch of one)."""
    return jax.vmap(lambda a, b: loss(a[None], b[None]))(logits, y)


def classes(y: jax.Array, n_out: int, batch_axes: int, rule: str) -> jax.Array:
    """``(*batch,)`` int32 class indices of the labels ``y`` of logits ``(*batch, n_out)``, for a rule
    that reads classes (local's sim targets, ff's label inputs).

    One output (a binary task): the class ``y > 0`` of labels shaped ``(*batch,)`` or ``(*batch, 1)``
    (±1, or 0/1). More outputs: labels ``(*batch,)`` as given; integer labels shaped like the logits
    (one-hot) their argmax. Real-valued labels shaped like the logits are regression targets, which
    have no classes: a one-line InputError, as for any other shape (raised while tracing).
    """
    rule_is = f"rule {rule!r} reads class labels"
    if y.ndim == batch_axes + 1 and y.shape[-1] == n_out:  # shaped like the logits
        if n_out == 1:
            return (y[..., 0] > 0).astype(jnp.int32)
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise InputError(f"{rule_is}, but these labels are real-valued ({y.dtype.name}, shape {tuple(y.shape)}, "
                             f"shaped like the logits): regression targets have none; for classes pass integer labels "
                             f"(one-hot labels: their argmax)")
        return y.argmax(-1).astype(jnp.int32)
    if y.ndim == batch_axes:
        return (y > 0).astype(jnp.int32) if n_out == 1 else y.astype(jnp.int32)
    raise InputError(f"{rule_is} of shape (*batch,) or (*batch, {n_out}) ({batch_axes} batch axes); got labels of "
                     f"shape {tuple(y.shape)}")
