"""Training: one train-state pytree, a pure step, ``lax.scan`` over steps, ``vmap`` over seeds.

``sweep(model, task, rule=..., seeds=8, ...)`` trains every seed of one configuration as one
compiled program: the seed is a leading array axis of the :class:`TrainState`; the task's
arrays are shared (not copied per seed). Evaluation runs inside the scan every
``eval_every`` steps; the host only sees one chunk of evaluations at a time (for the
progress bar), never single steps.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.typing import ArrayLike
from tqdm.auto import tqdm

from fa_jax import checks
from fa_jax import losses as losses_lib
from fa_jax.analysis import diagnostics as diagnostics_lib
from fa_jax.data.arrays import for_model
from fa_jax.errors import InputError
from fa_jax.optim import zoo as optim
from fa_jax.training import checkpoint as checkpoint_lib
from fa_jax.training import compiles, sharding
from fa_jax.training import early_stopping as early_stopping_lib
from fa_jax.training.state import init_params, init_state
from fa_jax.training.step import make_evaluate, make_run_chunk, make_train_step
from fa_jax.training.sweep_config import Program, SweepConfig, with_val
from fa_jax.training.sweep_result import SweepResult, early_stopping_fields, rule_metric_fields

if TYPE_CHECKING:
    import optax

    from fa_jax.data.task import Task
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule

CHECKPOINT_SECONDS = 60.0  # default checkpoint interval of a sweep with checkpoint= (wall-clock)


@functools.lru_cache(maxsize=128)
def _programs(model, program: Program, data_mesh=None):
    """Jitted (init(keys, params, lrs), run_chunk) for one configuration, cached by ``(model,
    SweepConfig.program, data mesh)`` so repeated sweeps never recompile.

    The learning rate is not part of the key: it lives in the optimizer state
    (``inject_hyperparams``), one value per seed; only a schedule is.
    """
    c = program
    tx = optim.optimizer(c.optimizer, 1.0 if c.schedule is None else c.schedule, **dict(c.optimizer_hyper))
    loss_fn = losses_lib.get(c.loss)
    train_loss = losses_lib.smoothed(loss_fn, c.label_smoothing) if c.label_smoothing else loss_fn
    step = make_train_step(model, c.rule, train_loss, tx, c.batch_size, sharding.shard_batch(data_mesh))
    diagnose = diagnostics_lib.make_diagnose(model, c.rule, loss_fn, c.batch_size) if c.diagnostics else None
    validate = None if c.early_stopping is None else early_stopping_lib.make_validate(model, c.rule, loss_fn,
                                                                                       c.early_stopping)
    run_chunk = make_run_chunk(step, make_evaluate(model, c.rule, loss_fn), c.eval_every, c.chunk, diagnose, validate)

    def init_one(k, params, lr=None):
        s = init_state(k, model, c.rule, tx, dict(c.feedback), lr, params=params)
        return s if c.early_stopping is None else s.replace(early=early_stopping_lib.init_early(s.params))

    def init(keys, params, lrs):
        if lrs is None:
            return jax.vmap(init_one)(keys, params)
        return jax.vmap(init_one)(keys, params, lrs)

    spmd = {} if data_mesh is None else {"spmd_axis_name": "seeds"}
    return jax.jit(init), jax.jit(jax.vmap(run_chunk, in_axes=(0, None), **spmd))


@functools.lru_cache(maxsize=64)
def _param_program(model):
    """Jitted ``keys -> params``: every rule's initial params (:func:`init_params`) for the seeds'
    keys, one program per model, so a study of several rules compiles the draws once."""
    return jax.jit(jax.vmap(lambda k: init_params(k, model)))


def _refuse_traced(args: dict) -> None:
    names = checks.traced(args)
    if names:
        raise InputError(
            f"sweep is a host-level driver that compiles and vmaps over seeds by itself, so it cannot run inside "
            f"jax.jit or jax.vmap ({', '.join(names)} {'is' if len(names) == 1 else 'are'} traced); for a learning "
            f"rate per seed call it outside them with lr=[lr_0, ..., lr_S-1], a list or 1-D array of one float per "
            f"seed (S = the number of seeds)")


def sweep(model: Model, task: Task, *, rule: str | Rule = "bp", seeds: int | Sequence[int] = 8, steps: int = 1000,
          batch_size: int = 64, optimizer: str = "adam", lr: ArrayLike | Sequence[float] | optax.Schedule = 1e-3,
          loss: str | None = None, feedback: dict | None = None, eval_every: int = 100,
          optimizer_hyper: dict | None = None, progress: bool = True, desc: str | None = None,
          diagnostics: bool = False, devices: Sequence[jax.Device] | Mesh | None = None,
          early_stopping: int | None = None, val: tuple[ArrayLike, ArrayLike] | None = None,
          label_smoothing: float = 0.0, checkpoint: str | PathLike[str] | None = None,
          checkpoint_every: int | None = None, keep_checkpoints: int = 2, data_parallel: int = 1) -> SweepResult:
    """Train ``seeds`` seeds of one configuration as one compiled, vmapped program.

    Every argument is checked before anything compiles; the task's arrays too
    (:func:`fa_jax.data.check_task`), and a sweep that cannot fit in the device's memory is
    refused (:mod:`fa_jax.training.memory`). A host-level driver: it compiles and vmaps by
    itself, so it refuses to run inside ``jax.jit`` or ``jax.vmap`` (per-seed values go in ``lr``).

    Args:
        model: e.g. ``fj.mlp(...)``, ``fj.cnn.get(...)``: anything with the model contract
            (:mod:`fa_jax.models.contract`), checked first.
        task: a :class:`fa_jax.data.Task`.
        rule: a name from ``fj.RULES``.
        seeds: a count S (seeds 0..S-1) or a list of distinct ints in [0, 2**32).
        steps: training steps, a multiple of ``eval_every``.
        batch_size: examples per step (the whole training set when larger).
        optimizer: a name of :func:`fa_jax.optimizer`; ``optimizer_hyper`` its extra options
            (momentum, penalties, decay, clipping, ...).
        lr: a positive float, an optax schedule, or a list or 1-D array of S positive floats
            (one per seed, through ``inject_hyperparams``).
        loss: a name of :mod:`fa_jax.losses` (default: the task's).
        feedback: options for :func:`fa_jax.init_feedback` (``dist``, ``scaling``, ``scale``, ``scheme``).
        eval_every: steps between evaluations (test loss and accuracy, inside the scan).
        progress, desc: a progress bar per compiled chunk of steps, and its label.
        diagnostics: also record gradient/weight alignment and norms per layer at every
            evaluation (:mod:`fa_jax.analysis.diagnostics`; one extra batch and one extra BP
            gradient per evaluation).
        devices: the seed axis is sharded over these (default: all local devices; a
            ``jax.sharding.Mesh`` with axis ``"seeds"`` is used as given), see :mod:`fa_jax.training.sharding`.
        early_stopping, val: a patience (in evaluations) with ``val=(x_val, y_val)``: keeps each
            seed's params at its lowest validation loss (:mod:`fa_jax.training.early_stopping`).
        label_smoothing: alpha in [0, 1) for the training loss of a multi-class task
            (``optax.smooth_labels``; the test loss is unsmoothed).
        checkpoint: a directory, created if absent (a file or an unwritable place is refused);
            the whole batched TrainState and the metrics so far are saved there
            (:mod:`fa_jax.training.checkpoint`, orbax) every ``checkpoint_every`` steps (default:
            at the first chunk boundary after each :data:`CHECKPOINT_SECONDS` of training; a save
            costs ~0.1 s for small nets) and at the end, keeping the newest
            ``keep_checkpoints``. If it already holds a checkpoint of this configuration the sweep
            continues from it, bit-identical to an uninterrupted run (one of another
            configuration is refused).
        data_parallel: split each seed's training batch over this many devices as well (a
            ``("seeds", "data")`` mesh; for big models and few seeds; the batch size must divide by it).

    Returns:
        A :class:`fa_jax.SweepResult`: per-seed metric arrays (seeds on axis 0), the final
        batched TrainState, compile and run seconds.
    """
    _refuse_traced(locals())
    task = for_model(model, task)  # integer features of a model that takes real inputs
    cfg = SweepConfig.build(model, task, rule=rule, seeds=seeds, steps=steps, batch_size=batch_size,
                            optimizer=optimizer, lr=lr, loss=loss, feedback=feedback, eval_every=eval_every,
                            optimizer_hyper=optimizer_hyper, diagnostics=diagnostics, early_stopping=early_stopping,
                            val=val, label_smoothing=label_smoothing, checkpoint=checkpoint,
                            checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints,
                            data_parallel=data_parallel, devices=devices)
    return run(cfg, model, task if val is None else with_val(task, val), progress=progress, desc=desc,
               devices=devices, checkpoint=checkpoint)


def run(cfg: SweepConfig, model: Model, task: Task, *, progress: bool = True, desc: str | None = None,
        devices: Sequence[jax.Device] | Mesh | None = None,
        checkpoint: str | PathLike[str] | None = None) -> SweepResult:
    """Train the sweep ``cfg`` (built by :meth:`SweepConfig.build` for this ``model`` and ``task``,
    the validation arrays in ``task.aux`` with early stopping); :func:`sweep`'s other arguments."""
    seed_list = list(cfg.seeds)
    if isinstance(devices, Mesh):
        mesh = devices
    else:
        mesh = sharding.sweep_mesh(len(seed_list), jax.local_devices() if devices is None else devices,
                                   cfg.data_parallel)
    n_evals, chunk, eval_every, steps = cfg.n_evals, cfg.chunk, cfg.eval_every, cfg.steps
    ckpt = None if checkpoint is None else checkpoint_lib.Checkpointer(checkpoint, cfg.fingerprint(model, task),
                                                                       cfg.keep_checkpoints)
    init_fn, chunk_fn = _programs(model, cfg.program, mesh if cfg.data_parallel > 1 else None)
    lrs = cfg.lrs
    keys = jax.vmap(jax.random.key)(jnp.asarray(seed_list, jnp.uint32))
    draw, draw_s = compiles.compile_once_run(_param_program(model), keys)  # shared by the model's rules
    init_args = (keys, draw(keys), None if lrs is None else jnp.asarray(lrs, jnp.float32))
    init_exe, init_compile_s = compiles.compile_once_run(init_fn, *init_args)
    init_compile_s += draw_s
    state = init_exe(*init_args)
    state, task = sharding.place(state, task, mesh)
    chunks, done = [], 0  # done: evaluations already run (restored from a checkpoint)
    restored = None if ckpt is None else ckpt.restore(state)
    before = {"compile_s": 0.0, "run_s": 0.0}  # seconds the checkpointed part of the run took
    if restored is not None:
        state, metrics, start = restored
        chunks, done = [metrics], start // eval_every
        before.update(ckpt.restored_seconds)

    compiled, compile_s = None, 0.0  # a run restored at its last step compiles nothing
    if done < n_evals:
        t0 = time.perf_counter()
        compiled = chunk_fn.lower(state, task).compile()  # cached per config + shapes
        compile_s = time.perf_counter() - t0

    t0 = last_save = time.perf_counter()
    with tqdm(total=steps, initial=done * eval_every, desc=desc or cfg.rule.name, unit="step",
              disable=None if progress else True, leave=False) as bar:
        for _ in range(done // chunk, n_evals // chunk):
            state, m = compiled(state, task)
            chunks.append(jax.device_get(m))
            done += chunk
            bar.update(chunk * eval_every)
            due = (time.perf_counter() - last_save >= CHECKPOINT_SECONDS if cfg.checkpoint_every is None
                   else (done * eval_every) % cfg.checkpoint_every == 0)
            if ckpt is not None and (done == n_evals or due):
                last_save = time.perf_counter()
                chunks = [{k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}]
                ckpt.save(done * eval_every, state, chunks[0], {
                    "compile_s": before["compile_s"] + compile_s,
                    "run_s": before["run_s"] + time.perf_counter() - t0})
    jax.block_until_ready(state)
    if ckpt is not None:
        ckpt.close()
    run_s = time.perf_counter() - t0

    metrics = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}
    diag = {k: metrics[k] for k in diagnostics_lib.KEYS if k in metrics} if cfg.diagnostics else None
    return SweepResult(rule=cfg.rule.name, seeds=seed_list, eval_steps=np.arange(1, n_evals + 1) * eval_every,
                       loss=metrics["loss"], train_acc=metrics["train_acc"], test_loss=metrics["test_loss"],
                       test_acc=metrics["test_acc"], diverged_at=np.asarray(state.diverged_at),
                       state=state, compile_s=before["compile_s"] + compile_s, init_compile_s=init_compile_s,
                       run_s=before["run_s"] + run_s, diagnostics=diag,
                       resumed_from=0 if restored is None else restored[2],
                       **early_stopping_fields(metrics, state), **rule_metric_fields(metrics))
