"""One sweep's settings as one frozen, validated object: :class:`SweepConfig`.

``SweepConfig.build(model, task, **settings)`` checks every argument of :func:`fa_jax.sweep` once,
before anything compiles (one-line :class:`fa_jax.errors.InputError` naming the bad value), and
resolves the rule from its spec once: the engine then passes the :class:`fa_jax.Rule` object on.
The config is the compile-cache key (:attr:`SweepConfig.program`: what the compiled programs
depend on, so a second sweep of the same configuration does not recompile, whatever its learning
rates) and the checkpoint fingerprint (:meth:`SweepConfig.fingerprint`: what a resume must match).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.typing import ArrayLike

from fa_jax import checks
from fa_jax import losses as losses_lib
from fa_jax.data.arrays import check_input_dtype, check_task
from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.optim import zoo as optim
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback import check_feedback_options
from fa_jax.rules.rule import Family, Rule
from fa_jax.training import checkpoint as checkpoint_lib
from fa_jax.training import early_stopping as early_stopping_lib
from fa_jax.training import memory

if TYPE_CHECKING:
    import optax
    from jax.sharding import Mesh

    from fa_jax.data.task import Task
    from fa_jax.models.contract import Model


def seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``seeds`` (a count S or a list of distinct ints in [0, 2**32)) as a list; else an InputError."""
    if checks.is_int(seeds, numpy=True):
        if seeds < 1:
            raise InputError(f"seeds must be >= 1 (a count) or a list of seeds, got {seeds!r}")
        return list(range(int(seeds)))
    seeds = list(seeds)
    if not seeds or any(not checks.is_int(s, numpy=True) or not 0 <= s < 2**32 for s in seeds):
        raise InputError(f"seeds must be a positive count or a non-empty list of ints in [0, 2**32), got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seeds contain duplicates: {seeds!r}")
    return [int(s) for s in seeds]


def positive_int(name: str, v: int) -> None:
    """InputError unless ``v`` is an int in [1, 2**31) (int32 counters and shapes)."""
    checks.positive_int(name, v, numpy=True)
    if v >= 2**31:
        raise InputError(f"{name} must be < 2**31 (int32 counters and shapes), got {v!r}")


def chunk_size(n_evals: int, every: int | None = None, max_chunks: int = 20) -> int:
    """Evaluations per compiled chunk: the smallest divisor of n_evals giving at most
    max_chunks chunks (one compile); with checkpoints every ``every`` evaluations, a divisor
    of ``gcd(n_evals, every)`` so that every checkpoint falls on a chunk boundary."""
    g = n_evals if every is None else math.gcd(n_evals, every)
    for c in range(1, g + 1):
        if g % c == 0 and n_evals // c <= max_chunks:
            return c
    return g


def learning_rates(lr: ArrayLike | Sequence[float] | optax.Schedule, n: int) -> np.ndarray | None:
    """The ``n`` per-seed learning rates of ``lr`` (float32), or None for a schedule; else an InputError."""
    what = "lr must be a positive number, an optax schedule or a list of one per seed"
    if callable(lr):
        return None  # a schedule: every seed follows it
    raw = None
    if isinstance(lr, (Sequence, np.ndarray, np.generic, jax.Array)) and not isinstance(lr, str):
        try:
            raw = np.asarray(lr)
        except ValueError:  # ragged
            raise InputError(f"{what}, got {checks.show(lr)}") from None
    if raw is not None and raw.ndim:
        if raw.ndim != 1 or raw.dtype.kind not in "iuf":
            raise InputError(f"{what}, got {checks.show(lr)}")
        if raw.shape[0] != n:
            raise InputError(f"got {raw.shape[0]} learning rates for {n} seeds")
        lrs = raw.astype(np.float32)
        for i, v in enumerate(lrs):
            if not 0 < v < np.inf:  # float32: also catches values that underflow to 0
                raise InputError(f"lr[{i}] must be a positive finite number, got {raw[i].item()!r}")
        return lrs
    v = lr if raw is None else raw.item()
    if not checks.is_number(v):
        raise InputError(f"{what}, got {checks.show(lr)}")
    optim.check_learning_rate(v)
    lrs = np.full(n, v, np.float32)
    if not 0 < lrs[0] < np.inf:
        raise InputError(f"lr={v!r} is {lrs[0].item()} in float32; it must be a positive finite number")
    return lrs


def check_shapes(model: Model, task: Task, loss_name: str) -> None:
    """One-line InputError unless ``model`` reads ``task``'s inputs and its outputs fit the task and loss."""
    m_shape, t_shape = contract.input_shape(model), tuple(task.input_shape or (task.n_in,))
    if m_shape != t_shape and max(len(m_shape), len(t_shape)) > 1:  # flat ones: the n_in check below
        raise InputError(f"model input shape {m_shape} does not match task {task.name!r} input shape {t_shape}")
    if (model.n_in, model.n_out) != (task.n_in, task.n_out):
        if contract.token_axes(model):
            raise InputError(f"the sequence model reads {model.n_in} tokens and has a vocabulary of {model.n_out}, "
                             f"but task {task.name!r} has sequences of {task.n_in} tokens and a vocabulary of "
                             f"{task.n_out}")
        raise InputError(f"model is {model.n_in}->{model.n_out} but task {task.name!r} is {task.n_in}->{task.n_out}")
    check_input_dtype(model, task)
    losses_lib.get(loss_name)
    if loss_name == "softmax_ce" and task.n_out == 1:
        raise InputError(f"loss 'softmax_ce' needs >= 2 outputs; task {task.name!r} is binary (use bce, hinge, mse)")


def rule_identity(rule: Rule) -> str:
    """What a checkpoint records of ``rule``: its name when it is the rule the registry gives for that
    name (so runs checkpointed by name resume as before), else its repr (name, family, options) marked
    as not registered, so another rule of the same name never resumes from it."""
    try:
        if rules_lib.get(rule.name) == rule:
            return rule.name
    except InputError:
        pass
    return f"{rule!r} (not registered)"


def check_objective(rule: Rule, model: Model, task: Task, batch_size: int, loss: str,
                    feedback: dict | None) -> None:
    """Trace ``rule``'s objective once on shapes (nothing runs): its value must be a scalar, its
    metrics scalars whose names the sweep does not record itself, and a stateful model's new
    statistics must come back in ``Aux.stats``. One-line InputError otherwise."""
    from fa_jax.rules.feedback import init_feedback  # noqa: PLC0415
    from fa_jax.rules.rule import Batch  # noqa: PLC0415
    from fa_jax.training.sweep_result import STANDARD  # noqa: PLC0415

    def trace():
        key = jax.random.key(0)
        params = model.init(key)
        fb = init_feedback(key, model, rule, **(feedback or {}), params=params)
        params = params if rule.init_params is None else rule.init_params(key, model, params)
        params = params if rule.trainable is None else rule.trainable(params)
        x, y = task.sample(key, batch_size)
        stats = model.init_stats() if contract.is_stateful(model) else None
        return rule.train_objective(model, params, Batch(x, y, losses_lib.get(loss), stats), fb, key)

    value, aux = jax.eval_shape(trace)
    if value.shape != ():
        raise InputError(f"rule {rule.name!r}: its objective's value must be a scalar, got shape {value.shape}")
    for name, m in aux.metrics.items():
        if name in STANDARD:
            raise InputError(f"rule {rule.name!r} reports a metric named {name!r}, which the sweep records itself; "
                             f"rename it (taken: {', '.join(STANDARD)})")
        if getattr(m, "shape", None) != ():
            raise InputError(f"rule {rule.name!r}: metric {name!r} must be a scalar per step, got shape "
                             f"{getattr(m, 'shape', type(m).__name__)}")
    if contract.is_stateful(model) and aux.stats is None:
        raise InputError(f"rule {rule.name!r}: the model has running statistics (batch norm), which its objective "
                         f"must return as Aux.stats")


def with_val(task: Task, val: tuple[ArrayLike, ArrayLike]) -> Task:
    """``task`` with the checked validation arrays ``val = (x_val, y_val)`` in its ``aux`` (early stopping)."""
    x_val, y_val = early_stopping_lib.check_val(task, val)
    return task.replace(aux={**task.aux, "x_val": x_val, "y_val": y_val})


@dataclasses.dataclass(frozen=True)
class Program:
    """What the compiled programs of a sweep depend on (the compile-cache key, with the model)."""

    rule: Rule
    loss: str
    optimizer: str
    schedule: Callable | None
    optimizer_hyper: tuple
    feedback: tuple
    batch_size: int
    eval_every: int
    chunk: int
    diagnostics: bool
    early_stopping: int | None
    label_smoothing: float


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Every setting of one :func:`fa_jax.sweep`, checked (module doc); build it with :meth:`build`.

    rule: the resolved :class:`fa_jax.Rule`; seeds: the seed list; lrs: one float32 learning rate
    per seed (a tuple), or None with ``schedule``; optimizer_hyper, feedback: sorted ``(name,
    value)`` pairs; loss: the loss's name (the task's default filled in); chunk: evaluations per
    compiled dispatch. The other fields are :func:`fa_jax.sweep`'s arguments of the same name.
    """

    rule: Rule
    seeds: tuple
    steps: int
    batch_size: int
    optimizer: str
    lrs: tuple | None
    schedule: Callable | None
    loss: str
    feedback: tuple
    eval_every: int
    optimizer_hyper: tuple
    diagnostics: bool
    early_stopping: int | None
    label_smoothing: float
    checkpoint_every: int | None
    keep_checkpoints: int
    data_parallel: int
    chunk: int

    @classmethod
    def build(cls, model: Model, task: Task, *, rule: str | Rule = "bp", seeds: int | Sequence[int] = 8,
              steps: int = 1000, batch_size: int = 64, optimizer: str = "adam",
              lr: ArrayLike | Sequence[float] | optax.Schedule = 1e-3, loss: str | None = None,
              feedback: dict | None = None, eval_every: int = 100, optimizer_hyper: dict | None = None,
              diagnostics: bool = False, early_stopping: int | None = None,
              val: tuple[ArrayLike, ArrayLike] | None = None, label_smoothing: float = 0.0,
              checkpoint: str | PathLike[str] | None = None, checkpoint_every: int | None = None,
              keep_checkpoints: int = 2, data_parallel: int = 1,
              devices: Sequence[jax.Device] | Mesh | None = None) -> SweepConfig:
        """Check every setting against ``model`` and ``task`` (the arguments of :func:`fa_jax.sweep`,
        documented there) and return the config; one-line InputError for the first bad one. Also
        refuses a sweep that cannot fit in the device's memory (:mod:`fa_jax.training.memory`)."""
        optimizer_hyper = optim.check_sweep_options(optimizer, optimizer_hyper)
        if checkpoint is not None:
            checkpoint_lib.check_directory(checkpoint)
        contract.check_model(model)
        memory.check_sweep(model, task, rule=rule, seeds=seeds, batch_size=batch_size, optimizer=optimizer,
                           optimizer_hyper=optimizer_hyper, feedback=feedback, early_stopping=early_stopping,
                           steps=steps, eval_every=eval_every, devices=devices, data_parallel=data_parallel)
        seeds = seed_list(seeds)
        rule = rules_lib.get(rule)  # resolved once: the Rule object travels on
        rules_lib.check_model(rule, model)
        positive_int("steps", steps)
        positive_int("batch_size", batch_size)
        positive_int("eval_every", eval_every)
        if steps % eval_every:
            raise InputError(f"steps={steps} is not a multiple of eval_every={eval_every}")
        loss_name = loss or task.default_loss
        check_shapes(model, task, loss_name)
        check_feedback_options(**(feedback or {}))
        lrs = learning_rates(lr, len(seeds))
        hyper = tuple(sorted((optimizer_hyper or {}).items()))
        optim.optimizer(optimizer, 1.0, **dict(hyper))  # validates name and hyperparameters
        checks.boolean("diagnostics", diagnostics)
        if diagnostics and rule.family is Family.LAZY:
            raise InputError(f"diagnostics compare a rule with BP on the same network; rule {rule.name!r} trains a "
                             f"different (lazy) network, so they are available for bp, fa, dfa-style rules only")
        if diagnostics and contract.is_stateful(model):
            raise InputError("diagnostics=True does not support stateful (batch-norm) models yet; use norm='layer'")
        if diagnostics and not getattr(model, "probes", False):  # they re-wire the model's layers
            contract.layers(model, "diagnostics=True")
            contract.hidden_shapes(model, "diagnostics=True")
        early_stopping_lib.check_patience(early_stopping)
        if (early_stopping is None) != (val is None):
            raise InputError("early_stopping=patience and val=(x_val, y_val) go together; got "
                             f"early_stopping={early_stopping!r} and val {'given' if val is not None else 'None'}")
        if val is not None:
            task = with_val(task, val)
            early_stopping = int(early_stopping)
        label_smoothing = losses_lib.check_label_smoothing(label_smoothing, task.n_out)
        check_task(task, batch_size, loss_name, label_smoothing)
        if rule.objective is not None:
            check_objective(rule, model, task, batch_size, loss_name, feedback)
        if not isinstance(devices, jax.sharding.Mesh):
            positive_int("data_parallel", data_parallel)
            if batch_size % data_parallel:
                raise InputError(f"batch_size={batch_size} does not split over data_parallel={data_parallel} devices")
        else:
            data_parallel = devices.shape.get("data", 1)
        n_evals = steps // eval_every
        if checkpoint_every is not None:
            positive_int("checkpoint_every", checkpoint_every)
            if checkpoint is None:
                raise InputError("checkpoint_every needs checkpoint=<directory>")
            if checkpoint_every % eval_every:
                raise InputError(f"checkpoint_every={checkpoint_every} is not a multiple of eval_every={eval_every}")
        chunk = chunk_size(n_evals, None if checkpoint_every is None else checkpoint_every // eval_every)
        return cls(rule=rule, seeds=tuple(seeds), steps=int(steps), batch_size=int(batch_size), optimizer=optimizer,
                   lrs=None if lrs is None else tuple(lrs.tolist()), schedule=lr if lrs is None else None,
                   loss=loss_name, feedback=tuple(sorted((feedback or {}).items())), eval_every=int(eval_every),
                   optimizer_hyper=hyper, diagnostics=diagnostics, early_stopping=early_stopping,
                   label_smoothing=label_smoothing, checkpoint_every=checkpoint_every,
                   keep_checkpoints=keep_checkpoints, data_parallel=int(data_parallel), chunk=chunk)

    @property
    def n_evals(self) -> int:
        """Evaluations in the run (``steps / eval_every``)."""
        return self.steps // self.eval_every

    @property
    def program(self) -> Program:
        """The compile-cache key: every setting the compiled programs depend on (not the seeds, the
        steps or the learning rates, which live in the optimizer state; a schedule is part of it)."""
        return Program(self.rule, self.loss, self.optimizer, self.schedule, self.optimizer_hyper, self.feedback,
                       self.batch_size, self.eval_every, self.chunk, self.diagnostics, self.early_stopping,
                       self.label_smoothing)

    def fingerprint(self, model: Model, task: Task) -> dict[str, Any]:
        """What a checkpoint records and a resume must match: every setting that changes the run
        (a resume replays the same compiled chunks, so their length is part of it)."""
        return {"rule": rule_identity(self.rule), "seeds": list(self.seeds), "steps": self.steps,
                "eval_every": self.eval_every, "batch_size": self.batch_size, "model": repr(model), "task": task.name,
                "optimizer": self.optimizer, "optimizer_hyper": repr(self.optimizer_hyper),
                "lr": "schedule" if self.lrs is None else [float(f"{v:.7g}") for v in self.lrs], "loss": self.loss,
                "feedback": repr(self.feedback), "diagnostics": self.diagnostics,
                "early_stopping": self.early_stopping, "label_smoothing": self.label_smoothing,
                "data_parallel": self.data_parallel, "steps_per_dispatch": self.chunk * self.eval_every}
