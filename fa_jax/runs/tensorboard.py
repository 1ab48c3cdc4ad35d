"""TensorBoard event logs of a run directory, built from its ``metrics.jsonl`` and ``config.json``.

:func:`write_events` writes ``RUN_DIR/tensorboard/`` with one TensorBoard run (a subfolder) per
cell and seed plus the seeds' mean, so TensorBoard overlays the seeds of a cell::

    tensorboard/config/                 the config as text
    tensorboard/rule=bp/seed_0/         test_acc, loss, ... against the step
    tensorboard/rule=bp/mean/           the mean over the seeds that never diverged
    tensorboard/model=mlp,rule=fa/...   a cell with several labels

Per-layer metrics (the diagnostics) get one tag per layer (``grad_alignment_deg/layer_1``); a
missing or non-finite value is left out. Writing again replaces the whole folder. Needs the
optional ``tensorboardX`` (``pip install 'fa_jax[tensorboard]'``), imported on first use.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np

from fa_jax.errors import InputError
from fa_jax.runs import rundata
from fa_jax.runs.plots import seeds_label

FOLDER = "tensorboard"


def require() -> types.SimpleNamespace:
    """tensorboardX's synchronous event file writer, ``Event`` and summaries (``EventsWriter``,
    ``Event``, ``scalar``, ``text``); a one-line InputError saying how to install it when missing."""
    try:  # an optional extra
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar, text
    except ImportError:
        raise InputError("TensorBoard logs need tensorboardX: pip install 'fa_jax[tensorboard]'") from None
    return types.SimpleNamespace(EventsWriter=EventsWriter, Event=Event, scalar=scalar, text=text)


def _folder(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", text).strip("_.") or "_"


def _scalars(row: dict, metrics: dict) -> dict[str, float]:
    """{tag: value} of one row's finite metric values (a list gives ``key/layer_<i>``, 1-based)."""
    out = {}
    for k, v in metrics.items():
        for tag, x in ([(f"{k}/layer_{i + 1}", x) for i, x in enumerate(v)] if isinstance(v, list) else [(k, v)]):
            if x is not None and math.isfinite(x):
                out[tag] = float(x)
    return out


def runs(rows: list[dict]) -> dict[str, dict]:
    """{run folder: {"scalars": {tag: {step: value}}, "text": {tag: str}}} of checked metrics rows
    (:func:`fa_jax.runs.rundata.read_metrics`): ``<cell>/seed_<s>`` and ``<cell>/mean`` per cell
    (``<cell>``: its labels ``k=v`` joined by ``,``; none: the top folder); rows without a seed go
    to ``<cell>`` itself. A later row for the same run, tag and step replaces an earlier one."""
    cells, names = {}, {}  # label values -> folder; folder -> label values
    out = defaultdict(lambda: {"scalars": defaultdict(dict), "text": {}})
    seeds = defaultdict(dict)  # cell folder -> {seed: {tag: {step: value}}}
    diverged = defaultdict(set)
    for r in rows:
        labels, metrics = rundata.split_row(r)
        key = tuple(labels.items())
        if key not in cells:
            name = _folder(",".join(f"{k}={v}" for k, v in labels.items())) if labels else ""
            base, n = name, 1
            while name in names:  # two cells whose names differ only in replaced characters
                n += 1
                name = f"{base}~{n}"
            cells[key], names[name] = name, key
        cell = cells[key]
        if "seed" not in r:
            for tag, v in _scalars(r, metrics).items():
                out[cell or "."]["scalars"][tag][r["step"]] = v
            continue
        curves = seeds[cell].setdefault(r["seed"], defaultdict(dict))
        if r.get("diverged"):
            diverged[cell].add(r["seed"])
        for tag, v in _scalars(r, metrics).items():
            curves[tag][r["step"]] = v
            out[os.path.join(cell, f"seed_{r['seed']}")]["scalars"][tag][r["step"]] = v
    for cell, per_seed in seeds.items():
        mean = out[os.path.join(cell, "mean")]
        mean["text"]["seeds"] = seeds_label(",".join(f"{k}={v}" for k, v in names[cell]) or "run", len(per_seed),
                                            len(diverged[cell] & set(per_seed)))
        healthy = [c for s, c in per_seed.items() if s not in diverged[cell]]
        for tag in dict.fromkeys(t for c in healthy for t in c):
            steps = sorted({st for c in healthy for st in c.get(tag, {})})
            mean["scalars"][tag] = {st: float(np.mean([c[tag][st] for c in healthy if st in c.get(tag, {})]))
                                    for st in steps}
    return out


def _config_text(config: dict) -> str:
    """``config.json`` as a markdown code block (TensorBoard's text tab renders markdown)."""
    return "\n".join("    " + line for line in json.dumps(config, indent=2, default=str).splitlines())


def write_events(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``run_dir/tensorboard/`` from ``run_dir/metrics.jsonl`` (and ``config.json`` as text
    when present), replacing an earlier one; returns its path.

    One-line InputError for a damaged file (:mod:`fa_jax.runs.rundata`), a folder that is not
    writable, or tensorboardX missing. The new log is written beside the old one and swapped in
    when complete, so a failed write leaves the old log as it was.
    """
    tbx = require()
    run_dir = Path(run_dir)
    config = rundata.read_config(run_dir)
    logs = runs(rundata.read_metrics(run_dir, required=("step",)))
    if config is not None:
        logs["config"]["text"]["config"] = _config_text(config)
    if not os.access(run_dir, os.W_OK):
        raise InputError(f"cannot write {run_dir / FOLDER}: {str(run_dir)!r} is not writable")
    target = run_dir / FOLDER
    try:
        tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=f".{FOLDER}.new-"))
        mask = os.umask(0o022)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # as mkdir would make it (mkdtemp makes 0700)
    except OSError as err:
        raise InputError(f"cannot write {target}: {err.strerror or err}") from None
    old = None
    try:
        now = time.time()
        for name, log in logs.items():
            (tmp / name).mkdir(parents=True, exist_ok=True)
            w = tbx.EventsWriter(str(tmp / name / "events"))  # events.out.tfevents.<time>.<host>
            try:
                for tag, text in log["text"].items():
                    w.write_event(tbx.Event(wall_time=now, step=0, summary=tbx.text(tag, text)))
                for tag, curve in log["scalars"].items():
                    for step in sorted(curve):
                        w.write_event(tbx.Event(wall_time=now, step=step, summary=tbx.scalar(tag, curve[step])))
            finally:
                w.close()
        if target.exists() or target.is_symlink():
            old = target.rename(run_dir / f".{FOLDER}.old-{tmp.name.rsplit('-', 1)[-1]}")
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not (target.exists() or target.is_symlink()):
            old.rename(target)  # the old log back where it was
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    return target
