"""Checkpoint and resume a sweep with ``orbax-checkpoint``: the whole batched TrainState and
the metrics so far, every N steps and at the end, keeping the last K.

A checkpoint directory holds one sweep (one rule, one configuration). Each saved step has
three items: ``state`` (the TrainState, RNG keys as raw ``key_data``), ``curves`` (the
per-evaluation arrays so far, each (S, E_done, ...)) and ``meta`` (JSON: the step and the
run's *fingerprint*, the settings a resumed run must share). orbax writes each step to a
temporary folder and renames it when complete, so a save cut short by a kill is never
listed; a step that exists but cannot be read (corrupt files) is skipped with a warning
and the previous one is used. Restoring into the same shapes, device and precision gives
the same bits, so a resumed sweep equals the uninterrupted one bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from fa_jax import checks, interrupt
from fa_jax.errors import InputError

if TYPE_CHECKING:
    from fa_jax.training.state import TrainState

__all__ = ["Checkpointer", "check_directory", "fingerprint_mismatch", "latest_step"]


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_saveable(tree: Any) -> Any:
    """Typed PRNG keys -> their uint32 ``key_data`` (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def from_saveable(tree: Any, like: Any) -> Any:
    """Inverse of :func:`to_saveable`, with ``like`` (the template) telling which leaves are keys."""
    return jax.tree.map(lambda x, t: jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_key(t) else x,
                        tree, like)


def fingerprint_mismatch(saved: dict, current: dict) -> str | None:
    """The first setting that differs, as ``"rule='fa' (checkpoint) vs 'dfa' (this run)"``; None if equal."""
    for k in list(current) + [k for k in saved if k not in current]:
        if saved.get(k) != current.get(k):
            return f"{k}={saved.get(k)!r} (checkpoint) vs {current.get(k)!r} (this run)"
    return None


def _shapes(tree) -> dict:
    """{'params[0]["w"]': 'float32(8, 30, 256)', ...} for every leaf of a (saveable) tree."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(p): f"{np.dtype(x.dtype).name}{tuple(x.shape)}" for p, x in flat}


def latest_step(directory: str | os.PathLike[str]) -> int | None:
    """The newest complete checkpoint step in ``directory`` (no arrays are read), or None."""
    d = Path(directory)
    steps = [int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit()] if d.is_dir() else []
    return max(steps) if steps else None


def check_directory(directory: str | os.PathLike[str]) -> Path:
    """``directory`` as an absolute Path, if it is (or can be created as) a writable directory.

    A one-line ValueError for a value that is not a non-empty path, a path that is a file or
    lies inside one, and a directory that is not writable (or whose nearest existing parent
    is not, when it does not exist yet). Nothing is created.
    """
    if not isinstance(directory, (str, os.PathLike)) or not str(directory).strip():
        raise InputError(f"checkpoint must be a directory path (str or os.PathLike) or None, got {directory!r}")
    given, d = str(directory), Path(directory).absolute()
    try:
        parent = next(p for p in (d, *d.parents) if p.exists())  # d itself if it exists
        is_dir = parent.is_dir()
    except OSError as err:  # e.g. a parent that may not be searched
        raise InputError(f"checkpoint directory {given!r} cannot be reached ({err.strerror})") from None
    if parent == d and not is_dir:
        raise InputError(f"checkpoint={given!r} is a file; it must be a directory (or None: no checkpoint)")
    if not is_dir:
        raise InputError(f"checkpoint={given!r} lies inside the file {str(parent)!r}; it must be a directory "
                         f"(or None: no checkpoint)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"checkpoint directory {given!r} is not writable" if parent == d else
                         f"checkpoint directory {given!r} cannot be created: {str(parent)!r} is not writable")
    return d


@dataclasses.dataclass
class Checkpointer:
    """Saves and restores one sweep's state in ``directory``.

    fingerprint: JSON-able settings that must match on resume (rule, seeds, sizes, ...).
    keep: how many of the newest checkpoints to keep (older ones are deleted).
    Saves are asynchronous (training continues while orbax writes); :meth:`close` waits.
    """

    directory: Path
    fingerprint: dict
    keep: int = 2

    def __post_init__(self) -> None:
        if jax.process_count() > 1:
            raise InputError(f"cannot checkpoint {str(self.directory)!r} in a multi-process run (process "
                             f"{jax.process_index()} of {jax.process_count()}): orbax saves global arrays "
                             "together, and each process's sweep holds only its own seeds; run without checkpoints")
        import orbax.checkpoint as ocp  # noqa: PLC0415  (loaded on first use)
        checks.positive_int("keep_checkpoints", self.keep)
        self.directory = check_directory(self.directory)
        self.fingerprint = json.loads(json.dumps(self.fingerprint))  # compare as JSON: tuples -> lists
        logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every save at INFO
        self._mgr = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True))

    def save(self, step: int, state: TrainState, metrics: dict[str, Any],
             seconds: dict[str, float] | None = None) -> None:
        """Save ``state`` (a batched TrainState) and ``metrics`` ({name: (S, E_done, ...)}) as ``step``;
        ``seconds``: the time spent so far (``{"compile_s", "run_s"}``), given back on restore."""
        import orbax.checkpoint as ocp  # noqa: PLC0415  (loaded on first use)
        with interrupt.deferred():  # a Ctrl-C waits for the save to be scheduled, then for it to end
            self._save(ocp, step, state, metrics, seconds)

    def _save(self, ocp, step, state, metrics, seconds) -> None:
        self._mgr.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(to_saveable(state)),
            curves=ocp.args.StandardSave({k: np.asarray(v) for k, v in metrics.items()}),
            meta=ocp.args.JsonSave({"step": int(step), "fingerprint": self.fingerprint,
                                    "shapes": _shapes(to_saveable(state)), "seconds": seconds or {}})))

    def restore(self, like: TrainState) -> tuple[TrainState, dict[str, np.ndarray], int] | None:
        """``(state, metrics, step)`` from the newest readable checkpoint, or None if there is none.

        like: a TrainState with this run's shapes and shardings (e.g. the fresh initial state).
        A checkpoint of another configuration raises a one-line ValueError naming the first
        difference; an unreadable checkpoint is skipped with a warning (the previous one is used).
        The seconds saved with it are in :attr:`restored_seconds` (``{}`` if none).
        """
        self.restored_seconds = {}
        import orbax.checkpoint as ocp  # noqa: PLC0415  (loaded on first use)
        self._mgr.reload()
        steps = sorted(self._mgr.all_steps(), reverse=True)
        for step in steps:
            try:
                meta = self._mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            except Exception as err:  # noqa: BLE001 - any unreadable file means: try the previous step
                warnings.warn(f"checkpoint step {step} in {self.directory} is unreadable "
                              f"({type(err).__name__}); using the previous one", stacklevel=3)
                continue
            diff = fingerprint_mismatch(meta["fingerprint"], self.fingerprint)
            if diff is None:
                diff = fingerprint_mismatch(meta["shapes"], _shapes(to_saveable(like)))
            if diff is not None:
                raise InputError(f"checkpoint in {self.directory} is from a different configuration: {diff}")
            template = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_saveable(like))
            try:
                got = self._mgr.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(template), curves=ocp.args.StandardRestore()))
            except Exception as err:  # noqa: BLE001
                warnings.warn(f"checkpoint step {step} in {self.directory} is unreadable "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:120]}); using the previous one",
                              stacklevel=3)
                continue
            metrics = {k: np.asarray(v) for k, v in got["curves"].items()}
            self.restored_seconds = dict(meta.get("seconds") or {})
            return from_saveable(got["state"], like), metrics, int(meta["step"])
        return None

    def close(self) -> None:
        """Wait for pending asynchronous saves, then release the manager."""
        with interrupt.deferred():
            self._mgr.wait_until_finished()
            self._mgr.close()
