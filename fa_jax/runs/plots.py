"""Figures drawn from a run's rows (so any run directory can be re-plotted): learning curves,
per-layer curves, 2-D maps of hidden layers, grouped bars, and the parity grid's accuracy-vs-n
and (n, k) heatmaps. matplotlib loads when the first figure is drawn; the backend is the
user's (scripts that write PNGs headless choose ``Agg`` themselves)."""

from __future__ import annotations

import math
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from fa_jax import interrupt
from fa_jax.analysis import representations
from fa_jax.errors import InputError
from fa_jax.runs import rundata, rundir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_P = TypeVar("_P", bound="str | PathLike[str]")  # the image path, returned as given


def save(fig: Figure, path: _P, title: str | None = None) -> _P:
    """Give ``fig`` its title, lay it out, write it to ``path``, close it; returns ``path``.
    A failed write (a full disk) is an OSError naming ``path``."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        with interrupt.deferred():  # a Ctrl-C waits for the whole image
            fig.savefig(path)
    except OSError as err:
        raise rundir.named(err, path) from None
    finally:
        plt.close(fig)
    return path


def _by(rows, key, metric):
    """{value of ``key``: (steps (E,), values (S, E), seeds, diverged)} from metrics rows: values
    of the seeds that never diverged (a row with ``diverged`` true leaves its seed out entirely;
    rows without the key count as healthy), missing values NaN; ``seeds`` counts all of them."""
    out = {}
    for name in dict.fromkeys(r[key] for r in rows):
        rr = [r for r in rows if r[key] == name]
        steps = sorted({r["step"] for r in rr})
        bad = {r["seed"] for r in rr if r.get("diverged")}
        seeds = sorted({r["seed"] for r in rr} - bad)
        vals = np.full((len(seeds), len(steps)), np.nan)
        si, ti = {s: i for i, s in enumerate(seeds)}, {s: i for i, s in enumerate(steps)}
        for r in rr:
            v = r.get(metric)
            if r["seed"] in si and v is not None:
                vals[si[r["seed"]], ti[r["step"]]] = v
        out[name] = (np.array(steps), vals, len(seeds) + len(bad), len(bad))
    return out


def seeds_label(name: object, seeds: int, diverged: int, count: bool = True) -> str:
    """A line's legend: ``bp (4 seeds)``, ``bp (3 of 4 seeds; 1 diverged)``, ``bp: all 4 seeds
    diverged``; with ``count=False`` just ``bp`` when none diverged."""
    if diverged == seeds:
        return f"{name}: all {seeds} seeds diverged"
    if diverged:
        return f"{name} ({seeds - diverged} of {seeds} seeds; {diverged} diverged)"
    return f"{name} ({seeds} seeds)" if count else str(name)


def _band(ax, steps, vals, **kw):
    """Mean ± std over seeds (axis 0 of ``vals``) of a curve, NaN-safe."""
    with warnings.catch_warnings():  # a step where no seed has a value: a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(vals, 0), np.nanstd(vals, 0)
    (line,) = ax.plot(steps, mean, **kw)
    ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)


def _curve(ax, name, curve, color, count=True) -> bool:
    """Draw one ``_by`` curve (mean ± std of its healthy seeds) labelled by :func:`seeds_label`;
    when every seed diverged, only a legend entry. Returns whether any seed diverged."""
    steps, vals, seeds, diverged = curve
    label = seeds_label(name, seeds, diverged, count)
    if diverged == seeds:
        ax.plot([], [], ls="none", label=label)
    else:
        _band(ax, steps, vals, color=color, label=label)
    return diverged > 0


def curves(rows: Sequence[dict], path: _P, metric: str = "test_acc", ylabel: str = "test accuracy",
           title: str | None = None, *, panel: str | None = None, line: str = "rule") -> _P:
    """Learning curves: mean ± std band over seeds of ``metric`` vs step, one line per value of
    ``rows[i][line]``; one panel, or one panel per value of ``rows[i][panel]``.

    A seed with a ``diverged`` row is left out of its line entirely; the legend says so
    (:func:`seeds_label`; in panels, where it happened), and a line whose seeds all diverged is
    only a legend entry. With panels, the first panel has a legend, and so does any panel with a
    line of its own or a diverged seed. Colours follow the lines' order of appearance over all panels.

    Args:
        rows: metrics rows (dicts with step, seed, the metric, the labels); a missing value is a gap.
        path: the image file to write.
        metric: the row key plotted (default ``"test_acc"``); ylabel its axis label.
        title: the figure's title (default None).
        panel: the row key with one panel per value (default None: one panel).
        line: the row key with one line per value (default ``"rule"``).

    Returns:
        ``path``.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)

    colors = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(r[line] for r in rows))}
    if panel is None:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for name, curve in _by(rows, line, metric).items():
            _curve(ax, name, curve, colors[name])
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        return save(fig, path)
    panels = list(dict.fromkeys(r[panel] for r in rows))
    cols = min(len(panels), 5)
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 3.0 * nrows), dpi=100, squeeze=False, sharey=True)
    shown = set()  # lines named in a legend so far
    for i, (ax, name) in enumerate(zip(axes.flat, panels)):
        mine = _by([r for r in rows if r[panel] == name], line, metric)
        diverged = [_curve(ax, lname, curve, colors[lname], count=False) for lname, curve in mine.items()]
        if i == 0 or any(diverged) or set(mine) - shown:  # a panel with lines of its own names them too
            ax.legend(fontsize=7)
            shown |= set(mine)
        ax.set_title(name if isinstance(name, str) else f"{panel}={name}", fontsize=9)
        ax.set_xlabel("training step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    return save(fig, path, title)


def _n_layers(rows, metric):
    return max((len(r[metric]) for r in rows if r.get(metric) is not None), default=0)


def layer_curves(rows: Sequence[dict], path: _P, metric: str = "grad_alignment_deg",
                 ylabel: str = "angle to BP gradient (degrees)", title: str | None = None, log: bool = False,
                 hidden: bool = False) -> _P | None:
    """One panel per layer: mean ± std over seeds of the per-layer ``metric`` vs step, one line
    per rule (rules without the metric are skipped). Angles (``*_deg``) get a dashed line at 90°.
    Diverged seeds are left out and counted in the legend, as in :func:`curves`.

    Args:
        rows: metrics rows (dicts with rule, step, seed and the metric, a list with one value per layer).
        path: the image file to write.
        metric: the row key plotted (default ``"grad_alignment_deg"``); ylabel its axis label.
        title: the figure's title (default None).
        log: a log y axis (default False).
        hidden: the metric has one value per hidden activation h_l (else one per weight matrix
            W_l, the last being the output layer).

    Returns:
        ``path``, or None if no row has the metric.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    n = _n_layers(rows, metric)
    if n == 0:
        return None
    cols = min(n, 4)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.8 * nrows + 0.5), dpi=110, squeeze=False,
                             sharey=True)
    for li in range(n):
        ax = axes.flat[li]
        for ci, rule in enumerate(dict.fromkeys(r["rule"] for r in rows)):
            rr = [dict(r, _v=r[metric][li] if r.get(metric) is not None and li < len(r[metric]) else None)
                  for r in rows if r["rule"] == rule]
            curve = _by(rr, "rule", "_v")[rule]
            if curve[3] < curve[2] and np.isnan(curve[1]).all():  # the rule has no such metric
                continue
            _curve(ax, rule, curve, f"C{ci}", count=False)
        name = f"hidden h_{li + 1}" if hidden else f"W_{li + 1}" + (" (output)" if li == n - 1 else "")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("training step")
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    if metric.endswith("_deg"):
        for ax in axes.flat[:n]:
            ax.axhline(90, color="gray", lw=0.8, ls="--")
    axes.flat[0].legend(fontsize=8)
    return save(fig, path, title)


def embedding(maps: Mapping[tuple[str, str], np.ndarray], labels: ArrayLike, path: _P,
              title: str | None = None) -> _P:
    """Scatter plots of 2-D maps of hidden activations, coloured by label.

    maps: {(rule, stage): (N, 2) coordinates}, e.g. stage ``"before"``/``"after"``; rules
    are columns, stages rows. labels: (N,) ints (or ±1 for binary tasks). Returns ``path``.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    rules = list(dict.fromkeys(r for r, _ in maps))
    stages = list(dict.fromkeys(s for _, s in maps))
    fig, axes = plt.subplots(len(stages), len(rules), figsize=(3 * len(rules), 3 * len(stages) + 0.4),
                             dpi=110, squeeze=False)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for (rule, stage), xy in maps.items():
        ax = axes[stages.index(stage), rules.index(rule)]
        for ci, c in enumerate(classes):
            m = labels == c
            ax.scatter(xy[m, 0], xy[m, 1], s=4, color=cmap(ci % cmap.N), label=str(int(c)))
        ax.set_title(f"{rule}, {stage}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, -1].legend(title="label", fontsize=7, markerscale=2.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(fig, path, title)


def grouped_bars(rows: Sequence[dict], path: _P, group: str, hue: str, panels: Sequence[tuple[str, str, str]],
                 title: str | None = None) -> _P:
    """Bar chart: bars grouped by ``rows[i][group]``, one colour per ``rows[i][hue]``.

    Args:
        rows: dicts, one per bar (the first row of a (group, hue) pair is drawn).
        path: the image file to write.
        group: the row key whose values group the bars along x.
        hue: the row key whose values get one colour each.
        panels: [(value_key, err_key, ylabel), ...], one subplot each (e.g. accuracy and
            alignment); missing values (None) leave a gap, a missing error bar is 0.
        title: the figure's title (default None).

    Returns:
        ``path``.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    groups = list(dict.fromkeys(r[group] for r in rows))
    hues = list(dict.fromkeys(r[hue] for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.5, 1.1 * len(groups)) * len(panels), 3.6), dpi=110,
                             squeeze=False)
    width = 0.8 / len(hues)
    for ax, (val, err, ylabel) in zip(axes[0], panels):
        for hi, h in enumerate(hues):
            xs, ys, es = [], [], []
            for gi, g in enumerate(groups):
                r = next((r for r in rows if r[group] == g and r[hue] == h), None)
                if r is not None and r.get(val) is not None:
                    xs.append(gi + (hi - (len(hues) - 1) / 2) * width)
                    ys.append(r[val])
                    es.append(r.get(err) or 0.0)
            ax.bar(xs, ys, width, yerr=es, capsize=2, color=f"C{hi}", label=str(h))
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([str(g) for g in groups], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize=8)
    return save(fig, path, title)


def _acc(rows):
    return np.array([np.nan if r["test_accuracy"] is None else r["test_accuracy"] for r in rows], float)


def _stats(vals):
    with np.errstate(all="ignore"):
        return np.nanmean(vals), np.nanstd(vals)


def accuracy_vs_n(rows: Sequence[dict], path: _P, method_key: str = "method", title: str | None = None) -> _P:
    """Final test accuracy vs n: one line per method (mean ± std band over seeds), one panel
    per (k, width). rows: summary rows with method, n, k, width, test_accuracy."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    panels = sorted({(r["k"], r["width"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=110, squeeze=False)
    for ax, (k, width) in zip(axes[0], panels):
        sub = [r for r in rows if r["k"] == k and r["width"] == width]
        for i, method in enumerate(dict.fromkeys(r[method_key] for r in sub)):
            ns = sorted({r["n"] for r in sub if r[method_key] == method})
            stats = np.array([_stats(_acc([r for r in sub if r[method_key] == method and r["n"] == n])) for n in ns])
            ax.plot(ns, stats[:, 0], marker="os^vDx"[i % 6], ls=("-", "--", "-.", ":")[i % 4], label=method)
            ax.fill_between(ns, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], alpha=0.2)
        ax.axhline(0.5, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("n (input bits / images)")
        ax.set_ylabel("final test accuracy")
        ax.set_title(f"k={k}, width={width}")
        ax.set_ylim(0.4, 1.02)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    return save(fig, path, title)


def heatmap(rows: Sequence[dict], path: _P, method: str, method_key: str = "method", title: str | None = None) -> _P:
    """Mean final test accuracy of ``method`` over (n, k), one panel per width.

    Args:
        rows: summary rows with method, n, k, width, test_accuracy (as :func:`accuracy_vs_n`).
        path: the image file to write.
        method: the method shown; method_key the row key naming it (default ``"method"``).
        title: the figure's title (default None).

    Returns:
        ``path``.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    sub = [r for r in rows if r[method_key] == method]
    widths = sorted({r["width"] for r in sub})
    ns, ks = sorted({r["n"] for r in sub}), sorted({r["k"] for r in sub})
    fig, axes = plt.subplots(1, len(widths), figsize=(1.2 + 0.9 * len(ns) * len(widths), 1.4 + 0.6 * len(ks)),
                             dpi=110, squeeze=False)
    for ax, width in zip(axes[0], widths):
        grid = np.full((len(ks), len(ns)), np.nan)
        for i, k in enumerate(ks):
            for j, n in enumerate(ns):
                cell = [r for r in sub if r["width"] == width and r["k"] == k and r["n"] == n]
                if cell:
                    grid[i, j] = _stats(_acc(cell))[0]
        im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis", origin="lower", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="w" if v < 0.8 else "k")
        ax.set_xticks(range(len(ns)), ns)
        ax.set_yticks(range(len(ks)), ks)
        ax.set_xlabel("n")
        ax.set_ylabel("k")
        ax.set_title(f"{method}, width={width}", fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9, label="test accuracy")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


FIGURES = {  # file name: (metric, y label, log scale, one value per hidden activation)
    "alignment.png": ("grad_alignment_deg", "angle to BP gradient (°)", False, False),
    "signal_alignment.png": ("signal_alignment_deg", "angle to BP signal dL/dh (°)", False, True),
    "weight_alignment.png": ("weight_alignment_deg", "angle between B and W (°)", False, True),
    "grad_norms.png": ("grad_norm", "gradient norm |dW|_F", True, False),
    "weight_norms.png": ("weight_norm", "weight norm |W|_F", False, False),
}


def redraw(run_dir: str | PathLike[str], title: str | None = None) -> list[Path]:
    """Draw all figures the files in ``run_dir`` support; returns the paths written.

    title: figure title; default the ``task`` recorded in ``config.json``. A damaged
    ``config.json``, ``metrics.jsonl`` or ``embedding.npz`` is a one-line InputError naming the
    file (and line): :mod:`fa_jax.runs.rundata`.
    """
    run_dir = Path(run_dir)
    rows = rundata.read_metrics(run_dir, required=("rule", "seed", "step"), like_first=("model",))
    if title is None:
        title = (rundata.read_config(run_dir) or {}).get("task")
    embedded = None
    if (run_dir / "embedding.npz").is_file():  # read before any figure is written
        try:
            embedded = representations.load_maps(run_dir / "embedding.npz")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise InputError(f"{run_dir / 'embedding.npz'}: not a readable embedding file "
                             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    panel = "model" if "model" in rows[0] else None
    written = [curves(rows, run_dir / "curves.png", title=title, panel=panel),
               curves(rows, run_dir / "loss.png", "loss", "training loss", title=title, panel=panel)]
    for name, (metric, ylabel, log, hidden) in FIGURES.items():
        p = layer_curves(rows, run_dir / name, metric, ylabel, title=title, log=log, hidden=hidden)
        if p is not None:
            written.append(p)
    if embedded is not None:
        maps, labels, layer, method = embedded
        written.append(embedding(maps, labels, run_dir / "embedding.png",
                                       title=f"{title + ', ' if title else ''}hidden layer {layer} ({method})"))
    return [Path(p) for p in written]
