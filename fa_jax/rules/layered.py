"""A layered model's own forward pass, run layer by layer under a rule's control.

The rules that learn without a global backward pass (:mod:`fa_jax.rules.local`,
:mod:`fa_jax.rules.forward_forward`, :mod:`fa_jax.rules.perturbation`) need more than the logits of
one wired pass: every block's output (its own loss), every weighted map's output ``z_l = h W_l + b_l``
(to perturb it, or to send it an estimated gradient), a pass with each block's input detached.
:func:`forward` runs the model's own ``apply`` (so its normalization, dropout, batch-norm statistics
and input checks act as in any run) with a throwaway wiring whose ``wire(layers, params, x)`` the
rule writes, and hands back what that wiring returned beside the logits. :class:`Shifted` is the
op that adds a fixed array to a weighted map's output and records the output.

Conventions: ``layers[l](p, h, op) -> h'`` (:mod:`fa_jax.models.contract`); params one entry per
layer; a rule's extras (``Rule.init_params``) are extra keys of a layer's dict that the layers do not read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.rules.ops import Map
from fa_jax.rules.rule import Batch, Rule

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

# the keys of a layer's dict that fa_jax's layers read: its weighted map's (w, b), not a normalization's
MAP_KEYS = ("w", "b")


def check_layered(model: Model, rule: str) -> None:
    """One-line InputError unless ``model`` is a layered model (``model.layers``: fj.mlp, norm_mlp,
    the conv nets), which the rule ``rule`` runs block by block."""
    if getattr(model, "layers", None) is None:
        raise InputError(f"rule {rule!r} runs a model block by block and needs a layered model (fj.mlp, "
                         f"fj.norm_mlp, a conv net from fa_jax.models.cnn); {type(model).__name__} has no layers")


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
    a label's weights), which it also records in ``self.z`` (the unshifted ``z``)."""

    def __init__(self, shift: jax.Array | None = None):
        self.shift = shift
        self.z = None

    def _out(self, z: jax.Array) -> jax.Array:
        self.z = z
        return z if self.shift is None else z + self.shift.astype(z.dtype)

    def __call__(self, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return self._out(h @ w + b)

    def apply(self, fn: Map, h: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return self._out(fn(h, w) + b)


def map_shapes(model: Model, params: Any, x: jax.Array) -> list[tuple[int, ...]]:
    """The shape of every weighted map's output ``z_l`` (batch axes included) for inputs ``x``:
    one abstract pass, nothing computed."""

    def shapes(p, xx):
        def wire(layers, ps, h):
            zs = []
            for layer, q in zip(layers, ps):
                op = Shifted()
                h = layer(q, h, op)
                zs.append(op.z)
            return h, zs

        stats = model.init_stats() if contract.is_stateful(model) else None
        return forward(model, p, xx, wire, stats=stats, key=jax.random.key(0))[2]

    return [tuple(s.shape) for s in jax.eval_shape(shapes, params, x)]


def check_map_params(model: Model, rule: str, what: str) -> None:
    """One-line InputError when a layer of ``model`` has params besides its weighted map's (a
    normalization's scale and shift, prelu's alpha): ``rule`` sends its estimate to the maps'
    outputs ``z_l`` only (``what``), so those params would get no update."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    others = sorted({k for p in shapes for k in (p if isinstance(p, dict) else {}) if k not in MAP_KEYS})
    if others:
        raise InputError(f"rule {rule!r} {what}, so params {others} of this model would get no update: use a "
                         f"model without them (no normalization, no prelu) or fg(kind=weight)")


def per_example_loss(loss: Callable, logits: jax.Array, y: jax.Array) -> jax.Array:
    """``(batch,)`` losses whose mean is ``loss(logits, y)`` (a batch-mean loss, applied to each
    example as a batch of one)."""
    return jax.vmap(lambda a, b: loss(a[None], b[None]))(logits, y)


def flat(h: jax.Array) -> jax.Array:
    """``(batch, features)``: an activation with its feature axes flattened."""
    return h.reshape(h.shape[0], -1)


def zeros_like_tree(tree: Any) -> Any:
    """A zero array per leaf of ``tree``."""
    return jax.tree.map(jnp.zeros_like, tree)
