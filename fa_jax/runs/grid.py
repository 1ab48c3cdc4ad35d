"""Grids of sweeps: one vmapped :func:`fa_jax.sweep` per cell, one summary row per cell and seed.

A cell is a dict of the settings that vary (e.g. ``{"method": "dfa", "n": 20, "k": 3,
"width": 128}``); ``run_grid`` builds each cell's model and task with the callables it is
given, runs all its seeds as one compiled program, and appends the per-step metrics to a
run directory as it goes. Shared by ``experiments/parity_study.py`` and
``experiments/optimizer_study.py``.
"""

import itertools

import numpy as np

from fa_jax.runs import rundir
from fa_jax.training.sweep import sweep

SOLVED = 0.95  # a seed "solves" a cell when its final test accuracy reaches this


def product(**axes) -> list[dict]:
    """All combinations of the given axes, in order: ``product(n=[10, 20], k=[3])``."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[a] for a in names))]


def steps_to_threshold(eval_steps, acc, threshold: float = SOLVED) -> list:
    """Per seed, the first logged step whose accuracy reaches ``threshold``, or None.

    eval_steps: (E,); acc: (S, E), NaN-safe (a NaN never reaches the threshold).
    """
    acc = np.nan_to_num(np.asarray(acc, float), nan=-1.0)
    hit = acc >= threshold
    return [int(eval_steps[np.argmax(h)]) if h.any() else None for h in hit]


def cell_rows(res, cell: dict) -> list[dict]:
    """Summary rows for one cell: the cell's settings plus, per seed, test accuracy, steps to
    95% (mini-batch) train accuracy, final loss and divergence (None where diverged)."""
    steps95 = steps_to_threshold(res.eval_steps, res.train_acc)
    rows = []
    for row, s95 in zip(res.rows(), steps95):
        rows.append({**cell, "seed": row["seed"], "test_accuracy": row["test_accuracy"],
                     "steps_to_95": None if row["diverged"] else s95, "final_loss": row["final_loss"],
                     "diverged": row["diverged"], "steps": row["steps"],
                     "compile_s": round(res.compile_s, 3), "run_s": round(res.run_s, 3)})
    return rows


def run_grid(cells, make_model, make_task, sweep_kw, out=None, *, rule_key: str = "method",
             cell_kw=None, seed_info=None, progress: bool = True, checkpoint_every: int | None = None,
             checkpoints: bool = True, keep_checkpoints: int = 2) -> tuple[list[dict], dict]:
    """Run every cell; returns ``(summary_rows, results)`` with ``results[i]`` the i-th cell's
    :class:`fa_jax.SweepResult`.

    make_model(cell) / make_task(cell): the cell's model and task. sweep_kw: arguments for
    :func:`fa_jax.sweep` shared by all cells; ``cell_kw(cell) -> dict`` may override them per
    cell (e.g. the optimizer and its learning rates); ``seed_info(cell, seed) -> dict`` adds
    per-seed settings (e.g. that seed's learning rate) to its rows. out: a run directory whose
    ``metrics.jsonl`` receives every cell's per-step rows (with the cell's settings); with
    ``checkpoints`` each cell's sweep is checkpointed in ``out/checkpoints/<cell>`` (start the
    run with :func:`fa_jax.runs.rundir.start`; a resumed grid restores finished cells instantly).
    """
    rows, results = [], {}
    for i, cell in enumerate(cells):
        kw = {**sweep_kw, **(cell_kw(cell) if cell_kw else {})}
        desc = " ".join(f"{k}={v}" for k, v in cell.items())
        ckpt = {} if out is None else rundir.checkpointing(out, desc, checkpoint_every, checkpoints, keep_checkpoints)
        res = sweep(make_model(cell), make_task(cell), rule=cell[rule_key], desc=desc, progress=progress,
                    **ckpt, **kw)
        results[i] = res
        extra = (lambda seed: seed_info(cell, seed)) if seed_info else (lambda seed: {})
        rows += [{**r, **extra(r["seed"])} for r in cell_rows(res, cell)]
        if out is not None:
            rundir.append_jsonl(out / "metrics.jsonl", [{**cell, **extra(m["seed"]), **m} for m in res.metric_rows()])
    return rows, results


def summarize(rows, keys) -> list[dict]:
    """Group rows by ``keys``: seeds, diverged, mean/std test accuracy over finite seeds,
    fraction of seeds solved (final test accuracy >= 0.95), median steps to 95% train accuracy."""
    out = []
    for key in dict.fromkeys(tuple(r[k] for k in keys) for r in rows):
        group = [r for r in rows if tuple(r[k] for k in keys) == key]
        acc = np.array([r["test_accuracy"] for r in group if not r["diverged"]], float)
        s95 = [r["steps_to_95"] for r in group if r["steps_to_95"] is not None]
        out.append({**dict(zip(keys, key)), "seeds": len(group), "diverged": sum(r["diverged"] for r in group),
                    "mean_acc": float(acc.mean()) if acc.size else None,
                    "std_acc": float(acc.std()) if acc.size else None,
                    "solved": float(np.sum(acc >= SOLVED)) / len(group),
                    "median_steps_to_95": float(np.median(s95)) if s95 else None})
    return out


def table(summary, keys) -> str:
    """Markdown table: the keys | test acc (mean ± std) | solved | median steps to 95% | diverged."""
    head = " | ".join(keys)
    lines = [f"| {head} | test acc (mean ± std) | solved | steps to 95% (median) | diverged |",
             "|" + "---|" * (len(keys) + 4)]
    for s in summary:
        acc = "—" if s["mean_acc"] is None else f"{s['mean_acc']:.3f} ± {s['std_acc']:.3f}"
        s95 = "—" if s["median_steps_to_95"] is None else f"{s['median_steps_to_95']:.0f}"
        cells = " | ".join(f"{s[k]:.3g}" if isinstance(s[k], float) else str(s[k]) for k in keys)
        lines.append(f"| {cells} | {acc} | {s['solved']:.2f} | {s95} | {s['diverged']}/{s['seeds']} |")
    return "\n".join(lines)
