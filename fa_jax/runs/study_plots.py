"""Figures for grid studies, drawn from summary / metrics rows (any run directory can be re-plotted)."""

import numpy as np

from fa_jax.runs.plots import save


def _acc(rows):
    return np.array([np.nan if r["test_accuracy"] is None else r["test_accuracy"] for r in rows], float)


def _stats(vals):
    with np.errstate(all="ignore"):
        return np.nanmean(vals), np.nanstd(vals)


def accuracy_vs_n(rows, path, method_key="method", title=None):
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


def heatmap(rows, path, method, method_key="method", title=None):
    """Mean final test accuracy of ``method`` over (n, k), one panel per width."""
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


def curves_by(metric_rows, path, panel_key, line_key, metric="test_acc", ylabel="test accuracy", title=None):
    """Learning curves (mean ± std over seeds): one panel per ``panel_key`` value, one line per
    ``line_key`` value. metric_rows: per-step rows with step, seed and ``metric``."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    panels = list(dict.fromkeys(r[panel_key] for r in metric_rows))
    cols = min(len(panels), 5)
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), dpi=100, squeeze=False, sharey=True)
    for ax, panel in zip(axes.flat, panels):
        sub = [r for r in metric_rows if r[panel_key] == panel]
        for line in dict.fromkeys(r[line_key] for r in sub):
            rr = [r for r in sub if r[line_key] == line]
            steps = sorted({r["step"] for r in rr})
            by_step = [[np.nan if r[metric] is None else r[metric] for r in rr if r["step"] == s] for s in steps]
            stats = np.array([_stats(np.array(v, float)) for v in by_step])
            ax.plot(steps, stats[:, 0], label=str(line))
            ax.fill_between(steps, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], alpha=0.2)
        ax.set_title(str(panel), fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlabel("step", fontsize=8)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7)
    return save(fig, path, title)
