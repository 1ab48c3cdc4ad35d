"""How much memory a sweep needs, estimated before anything is allocated or compiled.

:func:`fa_jax.sweep` calls :func:`check_sweep` first and refuses (:class:`TooLarge`, a
one-line ValueError naming the estimate, the limit and what to reduce) a configuration that
cannot fit. The estimate, for S seeds on one device (seeds sharded over G accelerator groups:
S/G per device; with ``data_parallel`` D each training batch is split over D devices), in bytes:

- state: one seed's :class:`fa_jax.TrainState` (params, optimizer slots, feedback or frozen
  layers, batch-norm statistics; early stopping adds a copy of the params), counted from
  ``jax.eval_shape`` of its init (optax's own ``init``, so every optimizer's slots are
  counted exactly), x 2: a compiled chunk's input and output states are both live;
- params x 2: the gradients and the updates;
- activations: ``max(batch (n_in + 4 sum(units)), n_test 2 max(units))`` floats, ``units``
  being one example's activations per layer (:func:`fa_jax.models.contract.units`: hidden
  widths and outputs; a conv net: every layer's output but activations and flatten):
  training keeps each layer's pre-activation, activation and their cotangents for the
  backward pass; an evaluation runs the whole test set forward, one layer at a time;
- metrics: 4 float32 per evaluation (steps / eval_every), x 2 (device chunks, host copies);
- plus the task's arrays once.

It is an estimate: XLA fuses, reuses and pads buffers, so the true peak differs; the tests
hold it within a factor 2 of XLA's own ``memory_analysis`` of the compiled program. The
limit is the device's ``memory_stats()["bytes_limit"]`` (GPU/TPU) or the machine's physical
RAM (CPU); the environment variable ``FA_JAX_MEMORY_LIMIT_GIB`` overrides it (``inf`` turns
the check off). A model of more than :data:`MAX_LAYERS` layers is refused too: the compiled
program unrolls every layer, so its compile time grows without bound.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.sharding import Mesh

from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.models.contract import units
from fa_jax.rules import core as rules_lib

if TYPE_CHECKING:
    from fa_jax.data.task import Task
    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Rule

GiB = 2 ** 30
TRAIN_FACTOR = 4  # floats per unit per training example: pre-activation, activation, two cotangents
EVAL_FACTOR = 2   # per unit per test example: a layer's input and output
METRIC_BYTES = 2 * 4 * 4  # per evaluation and seed: loss, train_acc, test_loss, test_acc; device + host
MAX_LAYERS = 1000


class TooLarge(InputError):
    """A sweep that cannot fit in the device's memory (or cannot reasonably be compiled)."""


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Bytes one device needs; ``seeds`` is the number of seeds on that device."""

    seeds: int
    state: int        # one seed's TrainState
    params: int       # one seed's trainable params
    activations: int  # one seed's peak activations
    metrics: int      # one seed's metrics
    data: int         # the task's arrays (shared by the seeds)

    @property
    def per_seed(self) -> int:
        return 2 * self.state + 2 * self.params + self.activations + self.metrics

    @property
    def total(self) -> int:
        return self.seeds * self.per_seed + self.data


def _nbytes(tree) -> int:
    leaves = [x for x in jax.tree.leaves(tree) if hasattr(x, "shape") and hasattr(x, "dtype")]
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves
               if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key))


@functools.lru_cache(maxsize=256)
def _state_bytes(model, rule, optimizer, hyper, fb_opts, early) -> tuple[int, int, int]:
    """(one seed's TrainState bytes, its trainable params bytes, bytes per float), from shapes only."""
    from fa_jax.optim import zoo as optim  # noqa: PLC0415  (fa_jax.training.sweep imports this module)
    from fa_jax.training.state import init_state  # noqa: PLC0415

    tx = optim.optimizer(optimizer, 1.0, **dict(hyper))
    state = jax.eval_shape(lambda k: init_state(k, model, rule, tx, dict(fb_opts)), jax.random.key(0))
    params = _nbytes(state.params)
    item = max([np.dtype(x.dtype).itemsize for x in jax.tree.leaves(state.params)] or [4])
    return _nbytes(state) + (params if early else 0), params, item


def estimate(model: Model, task: Task, *, rule: str | Rule = "bp", seeds: int | Sequence[int] = 8,
             batch_size: int = 64, optimizer: str = "adam", optimizer_hyper: Mapping[str, Any] | None = None,
             feedback: Mapping[str, Any] | None = None, early_stopping: int | None = None, steps: int = 1000,
             eval_every: int = 100, devices: Sequence[jax.Device] | Mesh | None = None,
             data_parallel: int = 1) -> Estimate:
    """The :class:`Estimate` for one device of ``fj.sweep(model, task, ...)`` with these arguments.

    :class:`TooLarge` for a model of more than :data:`MAX_LAYERS` layers (nothing is traced) or
    ``steps >= 2**31``. The terms are those of the module doc.

    Args:
        model, task: as for :func:`fa_jax.sweep`; the task's arrays count once, its test set
            sizes the evaluation's activations.
        rule, optimizer, optimizer_hyper, feedback: as for :func:`fa_jax.sweep`; they shape one
            seed's TrainState (traced with ``jax.eval_shape``).
        seeds: a count or a list of seeds; their number is divided over the seed groups of ``devices``.
        batch_size: examples per step; with ``data_parallel`` D each device holds batch_size // D.
        early_stopping: a patience or None; not None adds a copy of the params to the state.
        steps, eval_every: the metrics hold steps // eval_every evaluations.
        devices, data_parallel: as for :func:`fa_jax.sweep` (CPU devices share one RAM: no division).
    """
    if contract.n_layers(model) > MAX_LAYERS:
        raise TooLarge(f"the model has {contract.n_layers(model)} layers; a sweep compiles every layer into "
                       f"its program, so at most {MAX_LAYERS} (fa_jax.training.memory.MAX_LAYERS): reduce the depth")
    if steps >= 2**31:
        raise TooLarge(f"steps={steps} does not fit the int32 step counter: at most {2**31 - 1}")
    n_seeds = seeds if isinstance(seeds, (int, np.integer)) else len(seeds)
    hyper = tuple(sorted((optimizer_hyper or {}).items()))
    fb_opts = tuple(sorted((feedback or {}).items()))
    rule = rules_lib.get(rule)  # resolved: a Rule equals its name, so the cache must not see both
    state, params, item = _state_bytes(model, rule, optimizer, hyper, fb_opts, early_stopping is not None)
    data = _nbytes([a for a in jax.tree.leaves(task) if hasattr(a, "shape")])
    u = units(model)
    shards, dp = _shards(n_seeds, devices, data_parallel)
    act = item * max(batch_size // dp * (model.n_in + TRAIN_FACTOR * sum(u)),
                     int(task.x_test.shape[0]) * EVAL_FACTOR * max(u))
    return Estimate(seeds=math.ceil(n_seeds / shards), state=state, params=params,
                    activations=act, metrics=METRIC_BYTES * (steps // eval_every), data=data)


def _devices(devices) -> list:
    if devices is None:
        return list(jax.local_devices())
    return list(devices.devices.flat) if isinstance(devices, Mesh) else list(devices)


def _shards(n_seeds, devices, data_parallel=1) -> tuple[int, int]:
    """(seed groups, devices per seed's batch), as :func:`fa_jax.training.sharding.sweep_mesh` picks
    them; (1, 1) on CPU, where every device shares the same RAM."""
    devs = _devices(devices)
    if not devs or devs[0].platform == "cpu":
        return 1, 1
    if isinstance(devices, Mesh):  # used as given
        return devices.shape.get("seeds", 1), devices.shape.get("data", 1)
    groups = max(1, len(devs) // data_parallel)
    return max(d for d in range(1, groups + 1) if n_seeds % d == 0), data_parallel


def env_limit() -> float | None:
    """Bytes set by ``FA_JAX_MEMORY_LIMIT_GIB`` (a positive number of GiB; ``inf``: no limit), or
    None when it is unset or empty; a one-line ValueError for anything else."""
    env = os.environ.get("FA_JAX_MEMORY_LIMIT_GIB")
    if not env:
        return None
    try:
        gib = float(env)
    except ValueError:
        gib = math.nan
    if not gib > 0:  # nan, zero, negative
        raise InputError(f"FA_JAX_MEMORY_LIMIT_GIB={env!r} must be a positive number of GiB (e.g. 40; inf: no limit)")
    return gib * GiB


def device_limit(device: jax.Device | None = None) -> tuple[float, str]:
    """``(bytes, description)``: what one device can hold (see the module doc)."""
    env = env_limit()
    if env is not None:
        return env, "FA_JAX_MEMORY_LIMIT_GIB"
    device = device or jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001  (backends without memory statistics)
        stats = {}
    if "bytes_limit" in stats:
        return float(stats["bytes_limit"]), f"{device.device_kind} memory"
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), f"{device.platform} physical RAM"


ARGS = ("rule", "seeds", "batch_size", "optimizer", "optimizer_hyper", "feedback", "early_stopping", "steps",
        "eval_every", "devices", "data_parallel")


def check_sweep(model: Model, task: Task, **kw: Any) -> Estimate | None:
    """Raise :class:`TooLarge` if ``fj.sweep(model, task, **kw)`` cannot fit (``kw``: any sweep
    arguments; those of :func:`estimate` are used). Returns the estimate, or None when the
    arguments are too broken to estimate (the sweep's own checks then name the problem)."""
    kw = {k: v for k, v in kw.items() if k in ARGS}
    env_limit()  # a bad FA_JAX_MEMORY_LIMIT_GIB is an error, whatever the arguments
    try:
        est = estimate(model, task, **kw)
        limit, what = device_limit(_devices(kw.get("devices"))[0])
    except TooLarge:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, ZeroDivisionError):
        return None
    if est.total > limit:
        raise TooLarge(message(est, limit, what))
    return est


def check_bytes(nbytes: int, what: str) -> None:
    """:class:`TooLarge` if ``nbytes`` (e.g. a dataset about to be generated) exceed the default device's limit."""
    limit, where = device_limit()
    if nbytes > limit:
        raise TooLarge(f"{what} would take {nbytes / GiB:.1f} GiB but the limit is {limit / GiB:.1f} GiB ({where})")


def check_all(cases: Iterable[Mapping[str, Any]], **common: Any) -> None:
    """:func:`check_sweep` for every case, a dict of sweep arguments (``model``, ``task``,
    ``rule``, ...) completing ``common``: e.g. every cell of a study, before the first compiles."""
    for case in cases:
        check_sweep(**{**common, **case})


def _size(b: float) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if b >= scale / 10 or unit == "KiB":
            return f"{b / scale:.1f} {unit}"


def message(est: Estimate, limit: float, what: str) -> str:
    """The one-line refusal: estimate and limit in GiB, the estimate's parts, what to reduce."""
    parts = {"the width/depth or seeds": 2 * est.state + 2 * est.params,
             "the width, batch_size, the test set or seeds": est.activations, "steps/eval_every or seeds": est.metrics}
    state, act, metrics = parts.values()
    return (f"this sweep needs about {est.total / GiB:.1f} GiB ({est.seeds} seed{'s' * (est.seeds != 1)} x "
            f"{_size(est.per_seed)}: params, optimizer state and feedback {_size(state)}, activations "
            f"{_size(act)}, metrics {_size(metrics)}; data {_size(est.data)}) but the limit is {limit / GiB:.1f} "
            f"GiB ({what}); reduce {max(parts, key=parts.get)} (an estimate, within ~2x)")
