"""Regularizers and clipping as optax links that compose with every optimizer and rule.

They act on gradients/updates only, so they are the same for BP, FA and DFA: the rule
decides the gradient, these links transform it. Feedback matrices live outside ``params``
and are never touched.

- penalties on the loss, ``J = L + l1 |W|_1 + l2/2 |W|^2`` (the introductory deep-learning
  lectures): :func:`penalty` (the loss term) or :func:`add_penalty_grad` (adds its gradient
  ``l1 sign(W) + l2 W``);
  weights only by default, since a penalized bias underfits (the optimal bias of centred
  data is the mean target, as in the lectures);
- :func:`decoupled_decay`: AdamW-style ``theta -= lr * rate * theta`` after the optimizer;
- :func:`max_norm`: projection of each unit's incoming weights onto ``|W[:, j]| <= c``
  after the update (``optax.projections.projection_l2_ball``);
- clipping by value / by global norm: ``optax.clip`` / ``optax.clip_by_global_norm``.

Every link masks with :func:`weight_mask`: only leaves named ``"w"`` of rank >= 2 (dense
and conv kernels), never biases, normalization scales/shifts or PReLU slopes.
``fj.optimizer(name, lr, clip_norm=, l2=, decoupled_decay=, max_norm=, ...)`` chains them
(see :func:`regularized`); the same keys work in ``fj.sweep(optimizer_hyper=...)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import optax

from fa_jax import checks
from fa_jax.errors import InputError

_P = TypeVar("_P")  # a params pytree

TOOLS = ("clip_value", "clip_norm", "l1", "l2", "penalize_biases", "decoupled_decay", "max_norm")
# reduce-on-plateau (optax.contrib.reduce_on_plateau) after the optimizer; fj.sweep passes value=loss
TOOLS += ("plateau_patience", "plateau_factor", "plateau_accumulation")


def _is_weight(path, leaf) -> bool:
    last = path[-1] if path else None
    name = getattr(last, "key", getattr(last, "name", None))
    return name in ("w", "kernel") and jnp.ndim(leaf) >= 2  # "kernel": a wrapped Flax model's


def weight_mask(params: Any) -> Any:
    """Pytree of bools like ``params``: True for weight matrices/kernels (key ``"w"``, or a Flax ``"kernel"``, rank >= 2)."""
    return jax.tree_util.tree_map_with_path(_is_weight, params)


def _penalized_mask(params, biases: bool):
    if not biases:
        return weight_mask(params)
    return jax.tree_util.tree_map_with_path(
        lambda p, x: _is_weight(p, x) or getattr(p[-1], "key", None) in ("b", "bias"), params)


def penalty(params: Any, l1: float = 0.0, l2: float = 0.0, biases: bool = False) -> jax.Array | float:
    """Scalar ``l1 * sum|theta| + l2 / 2 * sum theta^2`` over weights (and biases if asked)."""
    leaves = [x for x, m in zip(jax.tree.leaves(params), jax.tree.leaves(_penalized_mask(params, biases))) if m]
    return sum(l1 * jnp.abs(x).sum() + 0.5 * l2 * jnp.square(x).sum() for x in leaves)


def add_penalty_grad(l1: float = 0.0, l2: float = 0.0, biases: bool = False) -> optax.GradientTransformation:
    """Adds ``l1 sign(theta) + l2 theta`` to the gradient: the gradient of :func:`penalty`."""
    _nonneg("l1", l1)
    _nonneg("l2", l2)

    def update(updates, state, params=None):
        if params is None:
            raise InputError("add_penalty_grad needs params in update()")
        mask = _penalized_mask(params, biases)
        out = jax.tree.map(lambda g, p, m: g + l1 * jnp.sign(p) + l2 * p if m else g, updates, params, mask)
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def decoupled_decay(rate: float | jax.Array) -> optax.GradientTransformation:
    """Update link ``u -= rate * theta`` on weights only (put it after the optimizer's scaling;
    with ``rate = lr * wd`` this is AdamW's decoupled weight decay, Loshchilov & Hutter 2019)."""
    return optax.add_decayed_weights(-rate, mask=weight_mask)


def project_max_norm(params: _P, c: float) -> _P:
    """Each weight matrix's columns (a unit's incoming weights, axis 0) projected onto the
    L2 ball of radius ``c``; conv kernels are flattened over all but the last axis."""

    def proj(p, x, m):
        if not m:
            return x
        cols = x.reshape(-1, x.shape[-1])
        cols = jax.vmap(lambda v: optax.projections.projection_l2_ball(v, c), in_axes=1, out_axes=1)(cols)
        return cols.reshape(x.shape)

    return jax.tree_util.tree_map_with_path(lambda p, x: proj(p, x, _is_weight(p, x)), params)


def max_norm(c: float) -> optax.GradientTransformation:
    """Last link: turns ``u`` into ``project(theta + u) - theta`` so the new weights obey max-norm."""
    _positive("max_norm", c)

    def update(updates, state, params=None):
        if params is None:
            raise InputError("max_norm needs params in update()")
        new = project_max_norm(optax.apply_updates(params, updates), c)
        return jax.tree.map(lambda n, p: n - p, new, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


_decay_link, _max_norm_link = decoupled_decay, max_norm


def _nonneg(name, v):
    checks.number_in(name, v, 0, math.inf, what="a finite number >= 0")


def _positive(name, v):
    checks.positive_number(name, v, what="a finite number > 0")


def check_tools(clip_value: float | None = None, clip_norm: float | None = None, l1: float = 0.0, l2: float = 0.0,
                penalize_biases: bool = False, decoupled_decay: float = 0.0, max_norm: float | None = None,
                plateau_patience: int | None = None, plateau_factor: float = 0.1,
                plateau_accumulation: int | None = 1) -> None:
    """One-line ValueError for a bad regularizer or clipping setting (negative rates, non-positive bounds).

    Args:
        clip_value, clip_norm, max_norm: bounds, each None (off) or a finite number > 0.
        l1, l2, decoupled_decay: rates, each a finite number >= 0.
        penalize_biases: True or False.
        plateau_patience, plateau_accumulation: None or positive ints.
        plateau_factor: in (0, 1).
    """
    for name, v in (("plateau_patience", plateau_patience), ("plateau_accumulation", plateau_accumulation)):
        if v is not None:
            checks.positive_int(name, v)
    checks.number_in("plateau_factor", plateau_factor, 0, 1, lo_open=True)
    for name, v in (("clip_value", clip_value), ("clip_norm", clip_norm), ("max_norm", max_norm)):
        if v is not None:
            _positive(name, v)
    for name, v in (("l1", l1), ("l2", l2), ("decoupled_decay", decoupled_decay)):
        _nonneg(name, v)
    checks.boolean("penalize_biases", penalize_biases)


def regularized(make: Callable[..., optax.GradientTransformation], *, clip_value: float | None = None,
                clip_norm: float | None = None, l1: float = 0.0, l2: float = 0.0, penalize_biases: bool = False,
                decoupled_decay: float = 0.0, max_norm: float | None = None, plateau_patience: int | None = None,
                plateau_factor: float = 0.1,
                plateau_accumulation: int = 1) -> Callable[..., optax.GradientTransformation]:
    """Wrap an optax constructor ``make(learning_rate, **hyper)`` into a chain of links around it.

    ``clip_value -> clip_norm -> penalty grad -> make(lr) -> plateau -> -lr * decoupled_decay * W -> max_norm``

    (links with a zero / None setting are left out). These settings are static; the
    learning rate stays injectable (``optax.inject_hyperparams``).

    Args:
        make: an optax constructor ``make(learning_rate, **hyper) -> GradientTransformation``.
        clip_value: clip every gradient entry to [-clip_value, clip_value] (``optax.clip``).
        clip_norm: clip the gradient's global norm (``optax.clip_by_global_norm``).
        l1, l2: add the penalty gradient ``l1 sign(W) + l2 W`` (:func:`add_penalty_grad`).
        penalize_biases: penalize biases too (default False: weights only).
        decoupled_decay: the weight decay wd of AdamW's ``-lr * wd * W`` (:func:`decoupled_decay`).
        max_norm: project each unit's incoming weights onto ``|W[:, j]| <= max_norm`` (:func:`max_norm`).
        plateau_patience, plateau_factor, plateau_accumulation: ``plateau``,
            ``optax.contrib.reduce_on_plateau(patience, factor, accumulation_size)``, scales the
            updates by ``factor`` after ``plateau_patience`` (accumulated) updates without
            improving the loss its ``update`` gets as ``value=`` (``fj.sweep`` passes the batch loss).

    Returns:
        ``factory(learning_rate, **hyper)`` building the chain, with ``make``'s signature.
    """
    check_tools(clip_value, clip_norm, l1, l2, penalize_biases, decoupled_decay, max_norm, plateau_patience,
                plateau_factor, plateau_accumulation)
    mn = max_norm

    @functools.wraps(make)  # inject_hyperparams reads make's signature through __wrapped__
    def factory(learning_rate, **hyper):
        links = []
        if clip_value is not None:
            links.append(optax.clip(clip_value))
        if clip_norm is not None:
            links.append(optax.clip_by_global_norm(clip_norm))
        if l1 or l2:
            links.append(add_penalty_grad(l1, l2, penalize_biases))
        links.append(make(learning_rate, **hyper))
        if plateau_patience is not None:
            from fa_jax.optim.schedules import reduce_on_plateau  # noqa: PLC0415  (schedules imports optim.zoo)

            links.append(reduce_on_plateau(factor=plateau_factor, patience=plateau_patience,
                                           accumulation_size=plateau_accumulation))
        if decoupled_decay:
            links.append(_decay_link(learning_rate * decoupled_decay))
        if mn is not None:
            links.append(_max_norm_link(mn))
        return optax.chain(*links)

    return factory
