"""Terminal tables from summary rows (one row per rule and seed)."""

import numpy as np


def summarize(rows: list[dict], key: str = "rule") -> list[dict]:
    """Group summary rows by ``key``: mean/std/min test accuracy over finite seeds, diverged count."""
    out = []
    for name in dict.fromkeys(r[key] for r in rows):
        group = [r for r in rows if r[key] == name]
        acc = np.array([r["test_accuracy"] for r in group if not r["diverged"]], float)
        out.append({
            key: name, "seeds": len(group), "diverged": sum(r["diverged"] for r in group),
            "mean_acc": float(acc.mean()) if acc.size else None,
            "std_acc": float(acc.std()) if acc.size else None,
            "min_acc": float(acc.min()) if acc.size else None,
            "steps": group[0]["steps"], "seconds": group[0]["wall_s"],
        })
    return out


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def table(summary: list[dict], key: str = "rule") -> str:
    """Markdown table: rule | test acc (mean ± std) | min acc | diverged | steps | seconds."""
    lines = [f"| {key} | test acc (mean ± std) | min acc | diverged | steps | seconds |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        acc = "—" if s["mean_acc"] is None else f"{s['mean_acc']:.3f} ± {s['std_acc']:.3f}"
        lines.append(f"| {s[key]} | {acc} | {_fmt(s['min_acc'], '.3f')} | {s['diverged']}/{s['seeds']} "
                     f"| {s['steps']} | {_fmt(s['seconds'], '.1f')} |")
    return "\n".join(lines)


def final_layer_stats(metric_rows: list[dict], metric: str = "grad_alignment_deg") -> dict:
    """{rule: (mean (n_layers,), std (n_layers,), seeds)} of a per-layer ``metric`` at each
    rule's last logged step, over seeds (NaN/None entries ignored); rules without it are left out."""
    out = {}
    for rule in dict.fromkeys(r["rule"] for r in metric_rows):
        rr = [r for r in metric_rows if r["rule"] == rule and r.get(metric) is not None]
        if not rr:
            continue
        last = max(r["step"] for r in rr)
        vals = np.array([[np.nan if v is None else v for v in r[metric]] for r in rr if r["step"] == last], float)
        with np.errstate(all="ignore"):
            out[rule] = (np.nanmean(vals, 0), np.nanstd(vals, 0), len(vals))
    return out


def layer_table(metric_rows: list[dict], metric: str = "grad_alignment_deg", unit: str = "°",
                hidden: bool = False) -> str:
    """Markdown table: rule | one column per layer, ``mean ± std`` over seeds at the last step."""
    stats = final_layer_stats(metric_rows, metric)
    n = max((len(m) for m, _, _ in stats.values()), default=0)
    names = [f"h_{i + 1}" if hidden else f"W_{i + 1}" + (" (out)" if i == n - 1 else "") for i in range(n)]
    lines = ["| rule | seeds | " + " | ".join(names) + " |", "|---|---|" + "---|" * n]
    for rule, (mean, std, s) in stats.items():
        cells = [f"{m:.1f} ± {d:.1f}{unit}" for m, d in zip(mean, std)]
        lines.append(f"| {rule} | {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
