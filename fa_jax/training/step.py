"""The pure training step, the evaluation and the scanned chunk of steps a sweep compiles.

``step(state, task) -> (state, (loss, batch_accuracy, rule_metrics))`` samples a batch, takes
``jax.value_and_grad`` of the rule's objective (:meth:`fa_jax.Rule.train_objective`, which *is* the
rule's update) and applies the optimizer; ``make_run_chunk`` scans it ``eval_every`` times per evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import optax

from fa_jax import losses as losses_lib
from fa_jax.rules import core as rules_lib
from fa_jax.rules.rule import Batch
from fa_jax.training.state import TrainState, freeze_diverged

if TYPE_CHECKING:
    from fa_jax.data.task import Task
    from fa_jax.losses import Loss
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Aux, Rule

Metrics = dict[str, jax.Array]
# step(state, task) -> (state, (loss, batch_accuracy, rule_metrics))
Step = Callable[[TrainState, "Task"], tuple[TrainState, tuple[jax.Array, jax.Array, Metrics]]]
# evaluate(state, task) -> (test_loss, test_accuracy)
Evaluate = Callable[[TrainState, "Task"], tuple[jax.Array, jax.Array]]
Diagnose = Callable[[TrainState, "Task"], Metrics]  # diagnose(state, task) -> {name: array}
Validate = Callable[[TrainState, "Task"], tuple[TrainState, Metrics]]  # validate(state, task) -> (state, metrics)
RunChunk = Callable[[TrainState, "Task"], tuple[TrainState, Metrics]]  # run_chunk(state, task) -> (state, metrics)


def make_train_step(model: Model, rule: str | Rule, loss_fn: Loss, tx: optax.GradientTransformation, batch_size: int,
                    shard: Callable[[jax.Array], jax.Array] | None = None) -> Step:
    """``step(state, task) -> (state, (loss, batch_accuracy, rule_metrics))``: sample, grad of the
    rule's objective, update.

    The update is ``jax.value_and_grad`` of :meth:`fa_jax.Rule.train_objective` (the rule's
    ``objective``, or the loss through ``model.apply(params, x, rule=rule)``) and nothing else: the
    step never asks which rule runs. Its value is the logged training loss; its :class:`fa_jax.rules.Aux`
    gives the logits (mini-batch accuracy), a stateful model's new statistics and the rule's own
    metrics ({name: scalar}, averaged and logged like the loss). The optimizer's ``update`` gets the
    batch loss as ``value=`` (used by reduce-on-plateau).

    A non-finite loss sets ``diverged_at`` to the step (once) and freezes the seed: from that
    step on its params, opt_state, feedback and model_state (batch-norm statistics) stay what
    they were before it (a per-seed select, so under ``vmap`` the other seeds train on bit for
    bit as before). ``step`` and ``key`` still advance (``step`` counts the steps run, the same
    for every seed); the losses a frozen seed reports are those of its frozen params.

    The objective's key is ``fold_in(k_batch, 1)`` (dropout masks, a rule's own draws); a rule with an
    ``update_feedback`` hook (kp, wm, brsf) computes the new params and feedback from the old
    params, feedback and the optimizer's updates with the key ``fold_in(k_batch, 2)`` (the batch
    stream is unchanged).

    Args:
        model: anything with the model contract; stochastic models get ``train=True`` and a key,
            stateful ones ``train=True`` and their running statistics.
        rule: a :class:`fa_jax.Rule` (or a name or spec from ``fj.RULES``, resolved here).
        loss_fn: the training loss, ``loss(logits, labels) -> scalar``.
        tx: the optax optimizer.
        batch_size: examples per step, drawn by ``task.sample(key, batch_size)``.
        shard: applied to the sampled x and y (e.g. :func:`fa_jax.training.sharding.shard_batch`;
            default None: unchanged).
    """
    shard = shard or (lambda a: a)
    tx_extra = optax.with_extra_args_support(tx)
    r = rules_lib.get(rule)

    def step(state: TrainState, task: Task) -> tuple[TrainState, tuple[jax.Array, jax.Array, Metrics]]:
        key, k_batch = jax.random.split(state.key)
        x, y = task.sample(k_batch, batch_size)
        batch = Batch(shard(x), shard(y), loss_fn, state.model_state)

        def objective(params: Any) -> tuple[jax.Array, Aux]:
            return r.train_objective(model, params, batch, state.feedback, jax.random.fold_in(k_batch, 1))

        (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = tx_extra.update(grads, state.opt_state, state.params, value=loss)
        if r.update_feedback is None:
            params, feedback = optax.apply_updates(state.params, updates), state.feedback
        else:  # evolving feedback (kp, wm, brsf): the rule's hook, with a key of its own
            params, feedback = r.update_feedback(state.params, state.feedback, updates, jax.random.fold_in(k_batch, 2))
        bad = ~jnp.isfinite(loss) & (state.diverged_at < 0)
        diverged_at = jnp.where(bad, state.step, state.diverged_at)
        new = state.replace(params=params, opt_state=opt_state, feedback=feedback, key=key, step=state.step + 1,
                            diverged_at=diverged_at)
        if aux.stats is not None:
            new = new.replace(model_state=aux.stats)
        new = freeze_diverged(new, state)
        return new, (loss, losses_lib.accuracy(aux.logits, batch.y).mean(), dict(aux.metrics))

    return step


def make_evaluate(model: Model, rule: str | Rule, loss_fn: Loss) -> Evaluate:
    """``evaluate(state, task) -> (test_loss, test_accuracy)`` on the whole test set, from the rule's
    prediction (:meth:`fa_jax.Rule.infer`: its ``predict``, or the forward pass in eval mode)."""
    r = rules_lib.get(rule)

    def evaluate(state: TrainState, task: Task) -> tuple[jax.Array, jax.Array]:
        logits = r.infer(model, state.params, task.x_test, state.feedback, state.model_state)
        return loss_fn(logits, task.y_test), losses_lib.accuracy(logits, task.y_test).mean()

    return evaluate


def make_run_chunk(step: Step, evaluate: Evaluate, eval_every: int, evals_per_chunk: int,
                   diagnose: Diagnose | None = None, validate: Validate | None = None) -> RunChunk:
    """Run ``evals_per_chunk * eval_every`` steps; per evaluation return the mean training
    loss and mini-batch accuracy over its ``eval_every`` steps and the test loss/accuracy.

    Args:
        step: ``step(state, task) -> (state, (loss, batch_accuracy, rule_metrics))`` (:func:`make_train_step`).
        evaluate: ``evaluate(state, task) -> (test_loss, test_accuracy)`` (:func:`make_evaluate`).
        eval_every: steps per evaluation.
        evals_per_chunk: evaluations per call of the chunk.
        diagnose: ``diagnose(state, task) -> dict`` (optional, e.g.
            :func:`fa_jax.analysis.diagnostics.make_diagnose`) runs once per evaluation, so
            unlogged steps pay nothing; its arrays join the metrics.
        validate: ``validate(state, task) -> (state, dict)`` (optional, e.g. early stopping) runs there too.

    Returns:
        ``run_chunk(state, task) -> (state, metrics)``, metrics a dict of arrays with a leading
        axis of ``evals_per_chunk`` (``loss``, ``train_acc``, ``test_loss``, ``test_acc``, the rule's
        own metrics averaged over the interval, ...).
    """

    def run_chunk(state: TrainState, task: Task) -> tuple[TrainState, Metrics]:
        def interval(state, _):
            def body(carry, _):
                s, tot_loss, tot_acc = carry
                s, (loss, acc, rule_metrics) = step(s, task)
                return (s, tot_loss + loss, tot_acc + acc), rule_metrics

            zero = jnp.zeros((), jnp.float32)
            (state, tot_loss, tot_acc), rule_metrics = jax.lax.scan(body, (state, zero, zero), None,
                                                                    length=eval_every)
            test_loss, test_acc = evaluate(state, task)
            metrics = {"loss": tot_loss / eval_every, "train_acc": tot_acc / eval_every,
                       "test_loss": test_loss, "test_acc": test_acc}
            metrics.update({k: v.mean(axis=0) for k, v in rule_metrics.items()})  # the rule's own, per step
            if diagnose is not None:
                metrics.update(diagnose(state, task))
            if validate is not None:
                state, val_metrics = validate(state, task)
                metrics.update(val_metrics)
            return state, metrics

        return jax.lax.scan(interval, state, None, length=evals_per_chunk)

    return run_chunk
