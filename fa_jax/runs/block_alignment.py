"""Alignment per block of wrapped models: the per-kernel angles of the diagnostics grouped by block.

A block is the first name of a kernel's path (``block_0``, ``cell_0``, ``unembed``, ...); its angle
is the mean over its kernels of ``grad_alignment_deg`` (the angle between the rule's update and
BP's, :mod:`fa_jax.analysis.diagnostics`). The tables and the figure read a study's metric rows
labelled ``task`` and ``model`` and its cells ``{"task", "model" (label), "arch", "rule"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from fa_jax.runs import plots, tables

if TYPE_CHECKING:
    from fa_jax.wrap.model import FlaxModel

_P = TypeVar("_P", bound="str | PathLike[str]")  # the image path, returned as given


def blocks(model: FlaxModel) -> list[str]:
    """The blocks of ``model``'s kernels, in order: each kernel path's first name (block_0, ..., unembed)."""
    return list(dict.fromkeys(p[0] for p in model.kernel_paths))


def block_angles(angles: Sequence[float | None], paths: Sequence[tuple[str, ...]],
                 names: Sequence[str]) -> list[float]:
    """Per block of ``names``: the mean angle over its kernels (None entries and NaN ignored; NaN if none)."""
    a = np.array([np.nan if v is None else v for v in angles], float)
    out = []
    for b in names:
        vals = a[[i for i, p in enumerate(paths) if p[0] == b]]
        vals = vals[np.isfinite(vals)]
        out.append(float(vals.mean()) if vals.size else np.nan)
    return out


def with_blocks(rows: Sequence[dict], model: FlaxModel) -> list[dict]:
    """``rows`` (one model's metric rows) with ``block_alignment_deg``, the per-block mean angle."""
    paths, names = model.kernel_paths, blocks(model)
    return [dict(r, block_alignment_deg=None if r.get("grad_alignment_deg") is None
                 else block_angles(r["grad_alignment_deg"], paths, names)) for r in rows]


def stats_table(rows: Sequence[dict], metric: str, columns: Sequence[str], first: Sequence[str] = ("rule",)) -> str:
    """Markdown: the ``first`` labels | seeds | one column per entry of ``metric``, mean ± std over seeds
    at the last logged step (rows of each label group alike)."""
    lines = ["| " + " | ".join(first) + " | seeds | " + " | ".join(columns) + " |",
             "|" + "---|" * (len(first) + 1 + len(columns))]
    for key in dict.fromkeys(tuple(r[k] for k in first) for r in rows):
        group = [r for r in rows if tuple(r[k] for k in first) == key]
        stats = tables.final_layer_stats(group, metric)
        if not stats:
            continue
        ((mean, std, seeds),) = stats.values()
        cells = ["—" if not np.isfinite(m) else f"{m:.1f} ± {s:.1f}°" for m, s in zip(mean, std)]
        lines.append("| " + " | ".join(map(str, key)) + f" | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def alignment_tables(metric_rows: Sequence[dict], cells: Sequence[dict],
                     models: Mapping[tuple[str, str], FlaxModel]) -> str:
    """Per task and model: the final angle between each block's update and BP's (mean over the block's
    kernels), then per model label the angle between the signal at each DFA point and BP's."""
    parts = []
    for task in dict.fromkeys(c["task"] for c in cells):
        for arch in dict.fromkeys(c["arch"] for c in cells if c["task"] == task):
            labels = list(dict.fromkeys(c["model"] for c in cells if (c["task"], c["arch"]) == (task, arch)))
            rows = []
            for label in labels:
                rows += with_blocks([r for r in metric_rows if (r["task"], r["model"]) == (task, label)],
                                    models[task, label])
            names = blocks(models[task, labels[0]])
            parts.append(f"### {task}, {arch}: angle between the rule's weight update and BP's per block "
                         f"(mean over the block's kernels; last logged step)\n\n"
                         + stats_table(rows, "block_alignment_deg", names, ("model", "rule")))
            for label in labels:
                mine = [r for r in rows if r["model"] == label and r.get("signal_alignment_deg") is not None]
                if mine:
                    parts.append(f"### {task}, {label}: angle between the signal at each DFA point and BP's "
                                 f"dL/dh (last logged step)\n\n"
                                 + stats_table(mine, "signal_alignment_deg", models[task, label].point_names))
    return "\n\n".join(parts) + "\n"


def alignment_figure(metric_rows: Sequence[dict], cells: Sequence[dict], models: Mapping[tuple[str, str], FlaxModel],
                     task: str, path: _P) -> _P:
    """Bars: per model (a panel), the final per-block angle to BP's update of every rule but bp."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)

    archs = list(dict.fromkeys(c["arch"] for c in cells if c["task"] == task))
    fig, axes = plt.subplots(1, len(archs), figsize=(5.2 * len(archs), 3.8), dpi=110, squeeze=False)
    for ax, arch in zip(axes[0], archs):
        bars = [(c["model"], c["rule"]) for c in cells if (c["task"], c["arch"]) == (task, arch) and c["rule"] != "bp"]
        names = blocks(models[task, next(c["model"] for c in cells if (c["task"], c["arch"]) == (task, arch))])
        width = 0.8 / max(len(bars), 1)
        for i, (label, rule) in enumerate(bars):
            rows = with_blocks([r for r in metric_rows if (r["task"], r["model"], r["rule"]) == (task, label, rule)],
                               models[task, label])
            stats = tables.final_layer_stats(rows, "block_alignment_deg")
            if not stats:
                continue
            ((mean, std, _),) = stats.values()
            xs = np.arange(len(names)) + (i - (len(bars) - 1) / 2) * width
            ax.bar(xs, mean, width, yerr=std, capsize=2, color=f"C{i}",
                   label=rule if label == arch else f"{rule} ({label.split('-', 1)[1]})")
        ax.axhline(90, color="gray", lw=0.8, ls="--")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=8)
        ax.set_ylabel("angle to BP's update (°)")
        ax.set_title(arch, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        if bars:
            ax.legend(fontsize=8)
    return plots.save(fig, path, f"{task}: per-block angle between the rule's update and BP's (last step)")
