"""Redraw every figure of a run directory from its files, without retraining
(``redraw(run_dir)``; from a shell ``python -m fa_jax.plot RUN_DIR``).

Reads ``metrics.jsonl`` (and ``config.json``'s ``task`` for titles, ``embedding.npz`` when
present) and writes, with fixed names: ``curves.png`` (test accuracy), ``loss.png``
(training loss), and with diagnostics ``alignment.png`` (angle to the BP gradient per
layer), ``signal_alignment.png``, ``weight_alignment.png``, ``grad_norms.png``,
``weight_norms.png``; ``embedding.png`` from ``embedding.npz``.
"""

import json
from pathlib import Path

from fa_jax.runs import plots
from fa_jax.analysis import representations
from fa_jax.runs import rundir

FIGURES = {  # file name: (metric, y label, log scale, one value per hidden activation)
    "alignment.png": ("grad_alignment_deg", "angle to BP gradient (°)", False, False),
    "signal_alignment.png": ("signal_alignment_deg", "angle to BP signal dL/dh (°)", False, True),
    "weight_alignment.png": ("weight_alignment_deg", "angle between B and W (°)", False, True),
    "grad_norms.png": ("grad_norm", "gradient norm |dW|_F", True, False),
    "weight_norms.png": ("weight_norm", "weight norm |W|_F", False, False),
}


def redraw(run_dir, title=None) -> list[Path]:
    """Draw all figures the files in ``run_dir`` support; returns the paths written.

    title: figure title; default the ``task`` recorded in ``config.json``.
    """
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise ValueError(f"{str(run_dir)!r} is not a run directory (no metrics.jsonl)")
    rows = rundir.read_jsonl(metrics)
    if not rows:
        raise ValueError(f"{str(metrics)!r} has no rows")
    if title is None and (run_dir / "config.json").is_file():
        title = json.loads((run_dir / "config.json").read_text()).get("task")
    written = [plots.learning_curves(rows, run_dir / "curves.png", title=title),
               plots.learning_curves(rows, run_dir / "loss.png", metric="loss", ylabel="training loss", title=title)]
    for name, (metric, ylabel, log, hidden) in FIGURES.items():
        p = plots.layer_curves(rows, run_dir / name, metric, ylabel, title=title, log=log, hidden=hidden)
        if p is not None:
            written.append(p)
    if (run_dir / "embedding.npz").is_file():
        maps, labels, layer, method = representations.load_maps(run_dir / "embedding.npz")
        written.append(plots.embedding(maps, labels, run_dir / "embedding.png",
                                       title=f"{title + ', ' if title else ''}hidden layer {layer} ({method})"))
    return [Path(p) for p in written]

