"""Figures drawn from a run's metrics rows (so any run directory can be re-plotted)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _by_rule(rows, metric):
    """{rule: (steps (E,), values (S, E))} from metrics rows; missing values are NaN."""
    out = {}
    for rule in dict.fromkeys(r["rule"] for r in rows):
        rr = [r for r in rows if r["rule"] == rule]
        steps = sorted({r["step"] for r in rr})
        seeds = sorted({r["seed"] for r in rr})
        vals = np.full((len(seeds), len(steps)), np.nan)
        si, ti = {s: i for i, s in enumerate(seeds)}, {s: i for i, s in enumerate(steps)}
        for r in rr:
            v = r.get(metric)
            vals[si[r["seed"]], ti[r["step"]]] = np.nan if v is None else v
        out[rule] = (np.array(steps), vals)
    return out


def learning_curves(rows, path, metric="test_acc", ylabel="test accuracy", title=None):
    """Mean ± std band over seeds of ``metric`` vs step, one line per rule; saved to ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for rule, (steps, vals) in _by_rule(rows, metric).items():
        with np.errstate(all="ignore"):
            mean, std = np.nanmean(vals, 0), np.nanstd(vals, 0)
        ax.plot(steps, mean, label=f"{rule} ({vals.shape[0]} seeds)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
