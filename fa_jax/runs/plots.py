"""Figures drawn from a run's metrics rows (so any run directory can be re-plotted)."""

import math

import numpy as np

from fa_jax.runs import rundir


def save(fig, path, title=None):
    """Give ``fig`` its title, lay it out, write it to ``path``, close it; returns ``path``.
    A failed write (a full disk) is an OSError naming ``path``."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as err:
        raise rundir.named(err, path) from None
    finally:
        plt.close(fig)
    return path


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
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
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
    return save(fig, path)


def _n_layers(rows, metric):
    return max((len(r[metric]) for r in rows if r.get(metric) is not None), default=0)


def layer_curves(rows, path, metric="grad_alignment_deg", ylabel="angle to BP gradient (degrees)", title=None,
                 log=False, hidden=False):
    """One panel per layer: mean ± std over seeds of the per-layer ``metric`` vs step, one line
    per rule (rules without the metric are skipped). Returns ``path``, or None if no row has it.

    hidden: the metric has one value per hidden activation h_l (else one per weight matrix
    W_l, the last being the output layer)."""
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
            rr = [dict(r, _v=r[metric][li]) for r in rows if r["rule"] == rule and r.get(metric) is not None
                  and li < len(r[metric])]
            if not rr:
                continue
            steps, vals = _by_rule(rr, "_v")[rule]
            with np.errstate(all="ignore"):
                mean, std = np.nanmean(vals, 0), np.nanstd(vals, 0)
            ax.plot(steps, mean, color=f"C{ci}", label=rule)
            ax.fill_between(steps, mean - std, mean + std, color=f"C{ci}", alpha=0.2)
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


def embedding(maps, labels, path, title=None):
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


def grouped_bars(rows, path, group, hue, panels, title=None):
    """Bar chart: bars grouped by ``rows[i][group]``, one colour per ``rows[i][hue]``.

    panels: [(value_key, err_key, ylabel), ...], one subplot each (e.g. accuracy and
    alignment); missing values (None) leave a gap. rows: dicts. Returns ``path``.
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
