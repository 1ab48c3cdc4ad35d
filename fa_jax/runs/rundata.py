"""Reading a run directory back, checked: ``config.json`` and ``metrics.jsonl`` (written by
:mod:`fa_jax.runs.rundir`). A damaged file is a one-line InputError naming the file and, for
``metrics.jsonl``, the line: ``runs/p/metrics.jsonl line 12: test_acc is 'abc', not a number``.

A metrics row holds ``seed`` and ``step`` (ints), ``diverged`` (a bool, optional), the cell's
labels and its metrics. Labels are the keys before ``seed`` (or ``step``) in the row (the study engine writes
``{**labels, "rule", "seed", "step", ...}``) and any string or bool value; metrics are the
other keys: a number or ``null`` (missing; NaN counts as missing too), or a list of them, one
per layer. The metric names of :data:`fa_jax.training.sweep_result.STANDARD` are always
metrics, the diagnostics (:data:`fa_jax.analysis.diagnostics.KEYS`) always per-layer lists.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from fa_jax.analysis.diagnostics import KEYS as LAYER_KEYS
from fa_jax.errors import InputError
from fa_jax.training.sweep_result import STANDARD

_AXES = ("seed", "step", "diverged")


def read_config(run_dir: str | os.PathLike[str]) -> dict | None:
    """``config.json`` of ``run_dir`` as a dict, or None when there is none."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_bytes().decode())
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: not a JSON object but {type(config).__name__}")
    task = config.get("task")
    if task is not None and not isinstance(task, str):
        raise InputError(f"{path}: task is {task!r}, not a string")
    return config


def read_metrics(run_dir: str | os.PathLike[str], required: Sequence[str] = ("seed", "step"),
                 like_first: Sequence[str] = ()) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl``, each checked (see the module docstring).

    required: keys every row must have (``seed``, ``step`` and any label, e.g. ``rule``).
    like_first: keys every row must have when the first row has them (e.g. ``model``).
    A torn last line (a write cut by a kill: no newline at its end) is dropped with a warning,
    as :func:`fa_jax.runs.rundir.read_jsonl` does. Returns the rows, at least one.
    """
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{str(run_dir)!r} is not a run directory (no metrics.jsonl)")
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    rows, first = [], None
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        where = f"{path} line {i + 1}"
        try:
            row = json.loads(raw.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if i < len(lines) - 1:  # a bad line before the end is not a torn write: a damaged file
                what = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else "not JSON"
                raise InputError(f"{where}: {what}") from None
            warnings.warn(f"{path}: dropped a torn last line", stacklevel=2)
            continue
        if not isinstance(row, dict):
            raise InputError(f"{where}: not a JSON object but {type(row).__name__}")
        if first is None:
            first = row
        keys = [*required, *(k for k in like_first if k in first)]
        _check_row(row, where, keys)
        rows.append(row)
    if not rows:
        raise InputError(f"{str(path)!r} has no rows")
    return rows


def _check_row(row: dict, where: str, keys: Sequence[str]) -> None:
    for k in keys:
        if k not in row:
            raise InputError(f"{where}: no {k!r} (every row needs {', '.join(keys)})")
    for k in ("seed", "step"):
        v = row.get(k)
        if k in row and (type(v) is not int or (k == "step" and v < 0)):
            raise InputError(f"{where}: {k} is {v!r}, not an integer" + (" >= 0" if k == "step" else ""))
    if row.get("diverged") not in (None, True, False):
        raise InputError(f"{where}: diverged is {row['diverged']!r}, not true or false")
    labels, metrics = split_row(row, keys)
    for k, v in labels.items():
        if v is not None and not isinstance(v, (str, int, float)):
            raise InputError(f"{where}: {k} is {v!r}, not a label (a string or number)")
    for k, v in metrics.items():
        if isinstance(v, list):
            bad = next((i for i, x in enumerate(v) if not _number(x)), None)
            if bad is not None:
                raise InputError(f"{where}: {k}[{bad}] is {v[bad]!r}, not a number")
            continue
        if k in LAYER_KEYS and v is not None:
            raise InputError(f"{where}: {k} is {v!r}, not a list of numbers (one per layer)")
        if not _number(v):
            raise InputError(f"{where}: {k} is {v!r}, not a number")


def _number(v: object) -> bool:
    """A metric value: a number (NaN included: a missing value) or None; not a bool."""
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def split_row(row: dict, labels: Sequence[str] = ()) -> tuple[dict, dict]:
    """``(labels, metrics)`` of a metrics row (see the module docstring); ``seed``, ``step`` and
    ``diverged`` are in neither. ``labels``: keys taken as labels wherever they are."""
    out_labels, metrics, before = {}, {}, True
    for k, v in row.items():
        if k in ("seed", "step"):
            before = False
        if k in _AXES:
            continue
        if k not in STANDARD and (k in labels or before or isinstance(v, (str, bool))):
            out_labels[k] = v
        else:
            metrics[k] = v
    return out_labels, metrics
