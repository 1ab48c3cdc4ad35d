"""Training: one train-state pytree, a pure step, ``lax.scan`` over steps, ``vmap`` over seeds.

``sweep(model, task, rule=..., seeds=8, ...)`` trains every seed of one configuration as one
compiled program: the seed is a leading array axis of the :class:`TrainState`; the task's
arrays are shared (not copied per seed). Evaluation runs inside the scan every
``eval_every`` steps; the host only sees one chunk of evaluations at a time (for the
progress bar), never single steps.
"""

import functools
import math
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from fa_jax import checks
from fa_jax import losses as losses_lib
from fa_jax.analysis import diagnostics as diagnostics_lib
from fa_jax.data.arrays import check_task
from fa_jax.models import contract
from fa_jax.optim import zoo as optim
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback import check_feedback_options
from fa_jax.training import checkpoint as checkpoint_lib
from fa_jax.training import compiles
from fa_jax.training import early_stopping as early_stopping_lib
from fa_jax.training import memory, sharding
from fa_jax.training.state import init_params, init_state
from fa_jax.training.step import make_evaluate, make_run_chunk, make_train_step
from fa_jax.training.sweep_result import SweepResult, early_stopping_fields
from fa_jax.errors import InputError

CHECKPOINT_SECONDS = 60.0  # default checkpoint interval of a sweep with checkpoint= (wall-clock)


def _seed_list(seeds) -> list[int]:
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


def _positive_int(name, v):
    checks.positive_int(name, v, numpy=True)
    if v >= 2**31:
        raise InputError(f"{name} must be < 2**31 (int32 counters and shapes), got {v!r}")


def _chunk_size(n_evals: int, every: int | None = None, max_chunks: int = 20) -> int:
    """Evaluations per compiled chunk: the smallest divisor of n_evals giving at most
    max_chunks chunks (one compile); with checkpoints every ``every`` evaluations, a divisor
    of ``gcd(n_evals, every)`` so that every checkpoint falls on a chunk boundary."""
    g = n_evals if every is None else math.gcd(n_evals, every)
    for c in range(1, g + 1):
        if g % c == 0 and n_evals // c <= max_chunks:
            return c
    return g


@functools.lru_cache(maxsize=128)
def _programs(model, rule, loss_name, optimizer, schedule, hyper, fb_opts, batch_size, eval_every, chunk,
              diagnostics=False, early_stopping=None, label_smoothing=0.0, data_mesh=None):
    """Jitted (init(keys, params, lrs), run_chunk) for one configuration, cached so repeated sweeps
    never recompile.

    The learning rate is not part of the key: it lives in the optimizer state
    (``inject_hyperparams``), one value per seed; only a schedule is.
    """
    tx = optim.optimizer(optimizer, 1.0 if schedule is None else schedule, **dict(hyper))
    loss_fn = losses_lib.get(loss_name)
    train_loss = losses_lib.smoothed(loss_fn, label_smoothing) if label_smoothing else loss_fn
    step = make_train_step(model, rule, train_loss, tx, batch_size, sharding.shard_batch(data_mesh))
    diagnose = diagnostics_lib.make_diagnose(model, rule, loss_fn, batch_size) if diagnostics else None
    validate = None if early_stopping is None else early_stopping_lib.make_validate(model, rule, loss_fn,
                                                                                     early_stopping)
    run_chunk = make_run_chunk(step, make_evaluate(model, rule, loss_fn), eval_every, chunk, diagnose, validate)

    def init_one(k, params, lr=None):
        s = init_state(k, model, rule, tx, dict(fb_opts), lr, params=params)
        return s if early_stopping is None else s.replace(early=early_stopping_lib.init_early(s.params))

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


def _learning_rates(lr, n: int):
    """The ``n`` per-seed learning rates of ``lr`` (float32), or None for a schedule; else a ValueError."""
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


def sweep(model, task, *, rule: str = "bp", seeds=8, steps: int = 1000, batch_size: int = 64,
          optimizer: str = "adam", lr=1e-3, loss: str | None = None, feedback: dict | None = None,
          eval_every: int = 100, optimizer_hyper: dict | None = None, progress: bool = True,
          desc: str | None = None, diagnostics: bool = False, devices=None, early_stopping: int | None = None,
          val=None, label_smoothing: float = 0.0, checkpoint=None, checkpoint_every: int | None = None,
          keep_checkpoints: int = 2, data_parallel: int = 1) -> SweepResult:
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
    optimizer_hyper = optim.check_sweep_options(optimizer, optimizer_hyper)
    if checkpoint is not None:
        checkpoint_lib.check_directory(checkpoint)
    contract.check_model(model)
    memory.check_sweep(model, task, rule=rule, seeds=seeds, batch_size=batch_size, optimizer=optimizer,
                       optimizer_hyper=optimizer_hyper, feedback=feedback, early_stopping=early_stopping,
                       steps=steps, eval_every=eval_every, devices=devices, data_parallel=data_parallel)
    seed_list = _seed_list(seeds)
    rules_lib.get(rule)
    rules_lib.check_model(rule, model)
    _positive_int("steps", steps)
    _positive_int("batch_size", batch_size)
    _positive_int("eval_every", eval_every)
    if steps % eval_every:
        raise InputError(f"steps={steps} is not a multiple of eval_every={eval_every}")
    m_shape, t_shape = contract.input_shape(model), tuple(task.input_shape or (task.n_in,))
    if m_shape != t_shape and max(len(m_shape), len(t_shape)) > 1:  # flat ones: the n_in check below
        raise InputError(f"model input shape {m_shape} does not match task {task.name!r} input shape {t_shape}")
    if (model.n_in, model.n_out) != (task.n_in, task.n_out):
        if contract.token_axes(model):
            raise InputError(f"the sequence model reads {model.n_in} tokens and has a vocabulary of {model.n_out}, but "
                             f"task {task.name!r} has sequences of {task.n_in} tokens and a vocabulary of {task.n_out}")
        raise InputError(f"model is {model.n_in}->{model.n_out} but task {task.name!r} is {task.n_in}->{task.n_out}")
    loss_name = loss or task.default_loss
    losses_lib.get(loss_name)
    if loss_name == "softmax_ce" and task.n_out == 1:
        raise InputError(f"loss 'softmax_ce' needs >= 2 outputs; task {task.name!r} is binary (use bce, hinge, mse)")
    check_feedback_options(**(feedback or {}))
    lrs = _learning_rates(lr, len(seed_list))
    hyper = tuple(sorted((optimizer_hyper or {}).items()))
    optim.optimizer(optimizer, 1.0, **dict(hyper))  # validates name and hyperparameters
    fb_opts = tuple(sorted((feedback or {}).items()))
    checks.boolean("diagnostics", diagnostics)
    if diagnostics and rules_lib.get(rule).init is not None and rules_lib.get(rule).family is None:
        raise InputError(f"diagnostics compare a rule with BP on the same network; rule {rule!r} trains a "
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
        x_val, y_val = early_stopping_lib.check_val(task, val)
        task = task.replace(aux={**task.aux, "x_val": x_val, "y_val": y_val})
        early_stopping = int(early_stopping)
    label_smoothing = losses_lib.check_label_smoothing(label_smoothing, task.n_out)
    check_task(task, batch_size, loss_name, label_smoothing)

    if isinstance(devices, Mesh):
        mesh, data_parallel = devices, devices.shape.get("data", 1)
    else:
        _positive_int("data_parallel", data_parallel)
        if batch_size % data_parallel:
            raise InputError(f"batch_size={batch_size} does not split over data_parallel={data_parallel} devices")
        mesh = sharding.sweep_mesh(len(seed_list), jax.local_devices() if devices is None else devices,
                                   data_parallel)

    n_evals = steps // eval_every
    if checkpoint_every is not None:
        _positive_int("checkpoint_every", checkpoint_every)
        if checkpoint is None:
            raise InputError("checkpoint_every needs checkpoint=<directory>")
        if checkpoint_every % eval_every:
            raise InputError(f"checkpoint_every={checkpoint_every} is not a multiple of eval_every={eval_every}")
    chunk = _chunk_size(n_evals, None if checkpoint_every is None else checkpoint_every // eval_every)
    ckpt = None if checkpoint is None else checkpoint_lib.Checkpointer(checkpoint, {
        "rule": rule, "seeds": seed_list, "steps": steps, "eval_every": eval_every, "batch_size": batch_size,
        "model": repr(model), "task": task.name, "optimizer": optimizer, "optimizer_hyper": repr(hyper),
        "lr": "schedule" if lrs is None else [float(f"{v:.7g}") for v in lrs], "loss": loss_name,
        "feedback": repr(fb_opts), "diagnostics": diagnostics, "early_stopping": early_stopping,
        "label_smoothing": label_smoothing, "data_parallel": data_parallel,
        "steps_per_dispatch": chunk * eval_every}, keep_checkpoints)  # a resume replays the same compiled chunks
    init_fn, chunk_fn = _programs(model, rule, loss_name, optimizer, lr if lrs is None else None, hyper,
                                  fb_opts, batch_size, eval_every, chunk, diagnostics, early_stopping,
                                  label_smoothing, mesh if data_parallel > 1 else None)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seed_list, jnp.uint32))
    draw, draw_s = compiles.compile_once_run(_param_program(model), keys)  # shared by the model's rules
    init_args = (keys, draw(keys), None if lrs is None else jnp.asarray(lrs))
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
    with tqdm(total=steps, initial=done * eval_every, desc=desc or rule, unit="step",
              disable=None if progress else True, leave=False) as bar:
        for _ in range(done // chunk, n_evals // chunk):
            state, m = compiled(state, task)
            chunks.append(jax.device_get(m))
            done += chunk
            bar.update(chunk * eval_every)
            due = (time.perf_counter() - last_save >= CHECKPOINT_SECONDS if checkpoint_every is None
                   else (done * eval_every) % checkpoint_every == 0)
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
    diag = {k: metrics[k] for k in diagnostics_lib.KEYS if k in metrics} if diagnostics else None
    return SweepResult(rule=rule, seeds=seed_list, eval_steps=np.arange(1, n_evals + 1) * eval_every,
                       loss=metrics["loss"], train_acc=metrics["train_acc"], test_loss=metrics["test_loss"],
                       test_acc=metrics["test_acc"], diverged_at=np.asarray(state.diverged_at),
                       state=state, compile_s=before["compile_s"] + compile_s, init_compile_s=init_compile_s,
                       run_s=before["run_s"] + run_s, diagnostics=diag,
                       resumed_from=0 if restored is None else restored[2],
                       **early_stopping_fields(metrics, state))
