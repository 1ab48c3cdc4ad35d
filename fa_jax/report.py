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
