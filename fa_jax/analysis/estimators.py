"""How close a stochastic rule's update is to BP's gradient, as more draws are averaged.

A rule whose update is a random estimate of the gradient (forward gradients ``fg``, node
perturbation ``node_pert``, or any objective rule that reads its key) draws a new estimate ``G_m``
for every key. Averaging ``n`` independent draws shrinks its variance by ``n``; :func:`cosines`
measures the cosine between the mean of ``n`` draws and BP's gradient ``g`` at the same params and
batch, for several ``n`` at once, in one compiled scan over the draws (running sums, one per
``n``, never the draws themselves: a draw is as large as the params).

For ``fg(kind=weight)`` (``G = (g . v) v``, ``v ~ N(0, I_D)``) the mean of ``n`` draws has mean ``g``
and covariance ``(|g|^2 I + g g^T) / n``, so its squared norm is about ``|g|^2 (1 + (D + 1) / n)``
and its cosine to ``g`` about :func:`weight_fg_cosine` ``= 1 / sqrt(1 + (D + 1) / n)`` (Baydin et
al. 2022; the cosine concentrates there for large ``D``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.rules import core as rules_lib
from fa_jax.rules.rule import Batch

if TYPE_CHECKING:
    from fa_jax.losses import Loss
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule


def _flat(tree: Any) -> jax.Array:
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(tree)])


def _model_part(tree: Any, like: Any) -> Any:
    """``tree`` (params-shaped) without a rule's extras: each layer dict keeps the keys of ``like``'s
    (the model's own params); any other structure is returned as it is."""
    if isinstance(tree, list) and isinstance(like, list) and all(isinstance(t, dict) for t in tree):
        return [{k: t[k] for k in m} for t, m in zip(tree, like)]
    return tree


@functools.lru_cache(maxsize=32)
def _program(model: Model, rule: Rule, loss_fn: Loss, ns: tuple[int, ...]):
    """The jitted ``(params, x, y, key, feedback) -> (cosines (max(ns), len(ns)), done)`` scan, one per
    (model, rule, loss, ns): a study calling :func:`cosines` per seed compiles it once."""
    like = jax.eval_shape(model.init, jax.random.key(0))
    sizes = jnp.asarray(ns)

    def run(params, x, y, key, feedback):
        batch = Batch(x, y, loss_fn)
        g = _flat(_model_part(jax.grad(lambda p: loss_fn(model.apply(p, x), y))(params), like))

        def draw(m):
            k = jax.random.fold_in(key, m)
            upd = jax.grad(lambda p: rule.train_objective(model, p, batch, feedback, k)[0])(params)
            return _flat(_model_part(upd, like))

        def body(sums, m):
            sums = sums + draw(m)[None]
            cos = sums @ g / (jnp.linalg.norm(sums, axis=1) * jnp.linalg.norm(g) + 1e-30)
            done = (m + 1) % sizes == 0
            return jnp.where(done[:, None], 0.0, sums), (cos, done)

        return jax.lax.scan(body, jnp.zeros((len(ns), g.size), g.dtype), jnp.arange(max(ns)))[1]

    return jax.jit(run)


def cosines(model: Model, rule: str | Rule, loss_fn: Loss, params: Any, x: jax.Array, y: jax.Array,
            key: jax.Array, ns: Sequence[int], feedback: Any = None) -> dict[int, np.ndarray]:
    """``{n: cosines}``: the cosine to BP's gradient of the mean of each disjoint group of ``n``
    consecutive draws of ``rule``'s update, over ``max(ns)`` draws.

    Both are compared on the model's own params (a rule's extras, e.g. local heads, left out).

    Args:
        model, params, feedback: the model (no dropout, no batch norm: the draws would differ from BP's
            by their masks or statistics too), its params (a rule's extras included) and the rule's feedback.
        rule: an objective rule whose update depends on its key (its objective's gradient is the update).
        loss_fn: ``loss(logits, labels) -> scalar``; x, y: one batch.
        key: draw ``m`` uses ``fold_in(key, m)`` as the objective's key.
        ns: group sizes, each dividing ``max(ns)``.

    Returns:
        ``{n: array of max(ns) // n cosines}``.
    """
    r = rules_lib.get(rule)
    ns = tuple(int(n) for n in ns)
    if not ns or min(ns) < 1 or any(max(ns) % n for n in ns):
        raise InputError(f"ns must be positive group sizes that each divide the largest, got {list(ns)}")
    if contract.is_stochastic(model) or contract.is_stateful(model):
        raise InputError(f"cosines compares {r.name!r}'s draws with BP's gradient on one deterministic pass: use a "
                         f"model without dropout or batch norm (this one is stochastic or stateful)")
    rules_lib.check_model(r, model)
    cos, done = (np.asarray(a) for a in _program(model, r, loss_fn, ns)(params, x, y, key, feedback))
    return {n: cos[done[:, i], i] for i, n in enumerate(ns)}


def weight_fg_cosine(n_params: int, n: int | np.ndarray) -> np.ndarray:
    """The cosine of the mean of ``n`` weight-perturbation forward gradients to the gradient,
    ``1 / sqrt(1 + (D + 1) / n)`` for ``D = n_params`` (module doc)."""
    return 1.0 / np.sqrt(1.0 + (n_params + 1) / np.asarray(n, np.float64))
