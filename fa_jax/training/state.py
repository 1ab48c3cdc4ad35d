"""The train state: one pytree per seed (params, optimizer state, feedback, RNG key, step).

Every seed's randomness derives from ``jax.random.key(seed)`` by *purpose*
(``fold_in(key, PURPOSE_*)``), so adding seeds to a sweep never changes the earlier ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import optax

from fa_jax import pytree
from fa_jax.models import contract
from fa_jax.optim import zoo as optim
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback import init_feedback

if TYPE_CHECKING:
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule

# fold_in "purposes": every seed's randomness derives from key(seed) by purpose, so adding
# seeds to a sweep never changes the earlier ones.
PURPOSE_INIT, PURPOSE_FEEDBACK, PURPOSE_TRAIN, PURPOSE_RULE = 0, 1, 2, 4


@pytree.dataclass
class TrainState:
    """Everything one seed's run carries: params, optimizer state, feedback, RNG key, step.

    ``diverged_at`` is the first step (0-based) whose loss was not finite (-1 while finite);
    from that step on the seed is frozen (:func:`freeze_diverged`, in every training step).
    ``early``: ``None``, or with early stopping the per-seed best params and their
    bookkeeping (:mod:`fa_jax.training.early_stopping`). ``model_state``: ``None``, or a stateful
    model's state (batch-norm running statistics), updated by every training step and used
    (in eval mode) by every evaluation.
    """

    params: list
    opt_state: optax.OptState
    feedback: list | None
    key: jax.Array
    step: jax.Array
    diverged_at: jax.Array
    early: dict | None = None
    model_state: list | None = None


def init_params(seed_key: jax.Array, model: Model) -> Any:
    """One seed's initial params, ``model.init(fold_in(seed_key, PURPOSE_INIT))`` (every rule's)."""
    return model.init(jax.random.fold_in(seed_key, PURPOSE_INIT))


def init_state(seed_key: jax.Array, model: Model, rule: str | Rule, tx: optax.GradientTransformation,
               feedback_opts: Mapping[str, Any] | None = None, learning_rate: float | jax.Array | None = None,
               params: Any = None) -> TrainState:
    """A fresh TrainState for one seed.

    Params, feedback and the training key are ``fold_in(seed_key, PURPOSE_*)`` (module doc).

    Args:
        seed_key: ``jax.random.key(seed)``.
        model: anything with the model contract (:mod:`fa_jax.models.contract`).
        rule: a :class:`fa_jax.Rule` (or a name from ``fj.RULES``); a rule with frozen layers
            (``trainable``) keeps only its trainable params, one with extras (``init_params``: local
            heads) adds them, drawn from ``fold_in(seed_key, PURPOSE_RULE)``.
        tx: the optax optimizer, e.g. from :func:`fa_jax.optimizer` (hyperparameters injected).
        feedback_opts: options for :func:`fa_jax.init_feedback` (default None: its defaults).
        learning_rate: this seed's learning rate, set in ``tx``'s injected state (default None:
            the one ``tx`` was built with).
        params: this seed's :func:`init_params`, when drawn already (default None: drawn here);
            the draw is the same for every rule, so a sweep draws it once per model.
    """
    params = init_params(seed_key, model) if params is None else params
    fb = init_feedback(jax.random.fold_in(seed_key, PURPOSE_FEEDBACK), model, rule, **(feedback_opts or {}),
                       params=params)
    r = rules_lib.get(rule)
    if r.init_params is not None:  # the rule's own trainable extras (auxiliary heads), drawn per seed
        params = r.init_params(jax.random.fold_in(seed_key, PURPOSE_RULE), model, params)
    if r.trainable is not None:  # frozen layers: no params, hence no gradient and no optimizer state
        params = r.trainable(params)
    opt_state = tx.init(params)
    if learning_rate is not None:
        opt_state = optim.set_learning_rate(opt_state, jnp.asarray(learning_rate, jnp.float32))
    return TrainState(params=params, opt_state=opt_state, feedback=fb,
                      key=jax.random.fold_in(seed_key, PURPOSE_TRAIN),
                      step=jnp.zeros((), jnp.int32), diverged_at=jnp.full((), -1, jnp.int32),
                      model_state=model.init_stats() if contract.is_stateful(model) else None)


def freeze_diverged(new: TrainState, old: TrainState) -> TrainState:
    """``new`` with the params, opt_state, feedback, model_state and early-stopping state of
    ``old`` where ``new.diverged_at >= 0`` (a scalar per seed; under ``vmap`` a per-seed select)."""
    frozen = new.diverged_at >= 0

    def keep(n: Any, o: Any) -> Any:
        return jax.tree.map(lambda a, b: jnp.where(frozen, b, a), n, o)

    return new.replace(params=keep(new.params, old.params), opt_state=keep(new.opt_state, old.opt_state),
                       feedback=keep(new.feedback, old.feedback), model_state=keep(new.model_state, old.model_state),
                       early=keep(new.early, old.early))


def apply_model(model: Model, state: TrainState, params: Any, x: jax.Array, *, rule: str | Rule,
                **kw: Any) -> tuple[jax.Array, Any]:
    """``(logits, new_model_state)``: ``model.apply`` with ``stats=state.model_state`` for a
    stateful model (batch norm; ``train`` in ``kw`` picks batch vs running statistics).

    Args:
        model: the seed's model.
        state: its TrainState; ``state.feedback`` is passed as ``feedback=``.
        params: the params to apply (``state.params`` or a candidate inside ``jax.grad``).
        x: the inputs, a batch.
        rule: a :class:`fa_jax.Rule` or a name from ``fj.RULES``.
        **kw: to ``model.apply`` (``train``, ``key``).

    Returns:
        ``(logits, new_model_state)``; new_model_state None for a model without state.
    """
    if state.model_state is None:
        return model.apply(params, x, rule=rule, feedback=state.feedback, **kw), None
    return model.apply(params, x, rule=rule, feedback=state.feedback, stats=state.model_state, **kw)
