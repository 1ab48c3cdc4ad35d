"""Checks before a run directory is reused: ``--resume`` of the same job, precision and settings,
and the checkpointing flags. They read, never write (a refused resume changes no byte)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax

from fa_jax.errors import InputError
from fa_jax.runs import configs, rundir

# config.json keys a resumed run may change: where it goes, how it checkpoints and reports
RESUMABLE = ("out", "resume", "config", "no_progress", "checkpoint_every", "keep_checkpoints", "tensorboard",
             "environment")


def check_resumable(out: str | os.PathLike[str], config: dict) -> None:
    """One-line ValueError if ``out`` holds no run to resume, or its ``config.json`` records a run
    of another job (:func:`fa_jax.runs.configs.check_job`), in another precision
    (:func:`check_precision`) or with other settings than ``config`` (keys in both, except
    :data:`RESUMABLE`); reads, never writes."""
    path = Path(out) / "config.json"
    if not path.is_file():
        if not rundir.saved_checkpoints(out):
            raise InputError(f"--resume {str(out)!r}: no run to resume there (no config.json, no checkpoints)")
        return
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        why = getattr(err, "strerror", None) or err
        raise InputError(f"--resume {str(out)!r}: cannot read {path} ({why})") from None
    if isinstance(recorded, dict) and "job" in config:
        configs.check_job(out, recorded.get("job"), config["job"])
    check_precision(out, recorded.get("environment") if isinstance(recorded, dict) else None)
    now = json.loads(json.dumps(config, default=str))
    changed = [k for k in now if k in recorded and k not in RESUMABLE and now[k] != recorded[k]]
    if changed:
        diffs = ", ".join(f"{k}={now[k]!r} (recorded {recorded[k]!r})" for k in changed[:3])
        raise InputError(f"--resume {str(out)!r}: the run was recorded with other settings: {diffs}; a resumed "
                         f"run keeps its configuration (start a new run with --out to change it)")


def check_precision(out: str | os.PathLike[str], environment: object) -> None:
    """One-line InputError if the run in ``out`` was made in another precision than this process's:
    64-bit floats (``x64``, ``JAX_ENABLE_X64``) and the default matmul precision, as ``environment``
    (:func:`fa_jax.runs.rundir.environment`, recorded in config.json) holds them; what is not recorded
    is not checked."""
    if not isinstance(environment, dict):
        return
    where = f"--resume {str(out)!r}: the run was made with"
    x64, now = environment.get("x64"), bool(jax.config.jax_enable_x64)
    if isinstance(x64, bool) and x64 != now:
        bits = {True: "64-bit floats (JAX_ENABLE_X64=1)", False: "32-bit floats"}
        how = "set JAX_ENABLE_X64=1" if x64 else "unset JAX_ENABLE_X64 (or set it to 0)"
        raise InputError(f"{where} {bits[x64]} and this process uses {bits[now].split(' (')[0]}; {how} to resume it")
    key = "default_matmul_precision"
    if key in environment and environment[key] != jax.config.jax_default_matmul_precision:
        rec, now = environment[key], jax.config.jax_default_matmul_precision
        how = "unset JAX_DEFAULT_MATMUL_PRECISION" if rec is None else f"set JAX_DEFAULT_MATMUL_PRECISION={rec}"
        raise InputError(f"{where} default matmul precision {rec!r} and this process uses {now!r}; {how} to resume it")


def check_checkpointing(checkpoint_every: int | None, keep_checkpoints: int, eval_every: int | None = None,
                        interval: str | None = None) -> None:
    """One-line ValueError unless ``checkpoint_every`` is None or >= 0 and a multiple of
    ``eval_every`` (checkpoints fall on evaluations), and ``keep_checkpoints`` >= 1. interval:
    what the message calls ``eval_every`` (default the ``--eval-every`` flag)."""
    if checkpoint_every is not None and checkpoint_every < 0:
        raise InputError(f"--checkpoint-every must be >= 0 (0: no checkpoints), got {checkpoint_every}")
    if checkpoint_every and eval_every and checkpoint_every % eval_every:
        where = f"--eval-every {eval_every}" if interval is None else f"{interval} (eval_every={eval_every})"
        raise InputError(f"--checkpoint-every {checkpoint_every} is not a multiple of {where}")
    if keep_checkpoints < 1:
        raise InputError(f"--keep-checkpoints must be >= 1, got {keep_checkpoints}")
