"""Tables from a study's rows: one summary per group of cells, markdown tables, per-layer tables.

Summary rows (one per cell and seed, :class:`fa_jax.runs.study.Study`) carry the cell's
labels, ``seed``, ``test_accuracy`` (None where the seed diverged), ``diverged``, ``steps``,
``wall_s`` and ``steps_to_95``; :func:`summarize` groups them by label keys and
:func:`table` prints any choice of :data:`COLUMNS` beside the keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

SOLVED = 0.95  # a seed "solves" a cell when its final test accuracy reaches this


def summarize(rows: list[dict], keys: str | Sequence[str] = ("rule",),
              extra: dict[str, Callable[[list[dict]], object]] | None = None) -> list[dict]:
    """Group rows by the label ``keys`` (a name or a sequence), in order of first appearance.

    Per group: ``seeds`` (all of them), ``diverged`` (count), ``mean_acc`` / ``std_acc`` / ``min_acc``
    over the seeds that did not diverge (None if none), ``solved`` (fraction of all seeds with
    final test accuracy >= 0.95; a diverged seed is not solved),
    ``median_steps_to_95`` (of the seeds whose mini-batch accuracy reached 95%, None if none),
    ``steps`` and ``seconds`` (the first row's ``wall_s``). extra: {key: fn(group rows) -> value}
    for further per-group fields (e.g. a model's parameter count).
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    out = []
    for key in dict.fromkeys(tuple(r[k] for k in keys) for r in rows):
        group = [r for r in rows if tuple(r[k] for k in keys) == key]
        acc = np.array([r["test_accuracy"] for r in group if not r["diverged"]], float)
        s95 = [r["steps_to_95"] for r in group if r.get("steps_to_95") is not None]
        out.append({**dict(zip(keys, key)), **{k: fn(group) for k, fn in (extra or {}).items()},
                    "seeds": len(group), "diverged": sum(r["diverged"] for r in group),
                    "mean_acc": float(acc.mean()) if acc.size else None,
                    "std_acc": float(acc.std()) if acc.size else None,
                    "min_acc": float(acc.min()) if acc.size else None,
                    "solved": float(np.sum(acc >= SOLVED)) / len(group),
                    "median_steps_to_95": float(np.median(s95)) if s95 else None,
                    "steps": group[0].get("steps"), "seconds": group[0].get("wall_s")})
    return out


def best(summary: list[dict], keys: str | Sequence[str]) -> list[dict]:
    """Per group of the label ``keys`` (in order of first appearance), the summary row with the
    highest ``mean_acc`` (a row without one ranks lowest; the first of equals wins): e.g. each
    rule's best learning rate from ``summarize(rows, ("rule", "lr"))``."""
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    out: dict = {}
    for s in summary:
        key = tuple(s[k] for k in keys)
        if key not in out or _score(s) > _score(out[key]):
            out[key] = s
    return list(out.values())


def _score(s) -> float:
    return -1.0 if s["mean_acc"] is None else s["mean_acc"]


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def _pm(mean, std, spec):
    return "—" if mean is None else f"{mean:{spec}} ± {std:{spec}}"


# column name: (header, cell text from one summary row)
COLUMNS = {
    "acc": ("test acc (mean ± std)", lambda s: _pm(s["mean_acc"], s["std_acc"], ".3f")),
    "min_acc": ("min acc", lambda s: _fmt(s["min_acc"], ".3f")),
    "solved": ("solved", lambda s: f"{s['solved']:.2f}"),
    "steps_to_95": ("steps to 95% (median)", lambda s: _fmt(s["median_steps_to_95"], ".0f")),
    "diverged": ("diverged", lambda s: f"{s['diverged']}/{s['seeds']}"),
    "steps": ("steps", lambda s: _fmt(s["steps"], "")),
    "seconds": ("seconds", lambda s: _fmt(s["seconds"], ".1f")),
    "params": ("params", lambda s: f"{s['params']:,}"),
}
RULES_TABLE = ("acc", "min_acc", "diverged", "steps", "seconds")  # the main job's columns
GRID_TABLE = ("acc", "solved", "steps_to_95", "diverged")  # the grid studies' columns


def _value(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def table(summary: list[dict],
          columns: Sequence[str | tuple[str, Callable[[dict], str]]] = ("rule", *RULES_TABLE)) -> str:
    """Markdown table of summary rows: a column per name in ``columns``, in order.

    A name in :data:`COLUMNS` is formatted as documented there; any other name is a label key
    printed as is (floats with 3 significant digits); a ``(header, fn)`` pair is a custom column
    whose cells are ``fn(summary_row)``.
    """
    cols = [c if isinstance(c, tuple) else COLUMNS.get(c, (c, lambda s, c=c: _value(s[c]))) for c in columns]
    lines = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fn(s) for _, fn in cols) + " |" for s in summary]
    return "\n".join(lines)


def final_layer_stats(metric_rows: list[dict], metric: str = "grad_alignment_deg") -> dict:
    """{rule: (mean (n_layers,), std (n_layers,), seeds)} of a per-layer ``metric`` at each
    rule's last logged step, over the seeds that have it there (NaN/None entries ignored; a
    diverged seed's rows are null, so it is left out and not counted); rules without it are left out."""
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
