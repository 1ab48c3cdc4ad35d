"""Compare learning rules on one task and write a run directory (the main job's engine).

``compare_rules`` runs one vmapped, jit-compiled :func:`fa_jax.sweep` per rule and
writes ``config.json`` first, ``metrics.jsonl`` as each rule finishes, ``curves.png``,
and ``summary.json`` last (so a directory with a summary is a complete run).
"""

from pathlib import Path

from fa_jax import plots, report, rundir
from fa_jax.train import sweep


def compare_rules(model, task, rules, out, config: dict, *, title=None, **sweep_kw):
    """Train every rule in ``rules`` on ``task``; returns ``(results, summary_rows, table_str)``.

    out: an existing writable folder (see :func:`fa_jax.rundir.prepare`). config: the
    resolved configuration, written verbatim to ``config.json``. ``sweep_kw`` goes to
    :func:`fa_jax.sweep` (seeds, steps, batch_size, optimizer, lr, loss, feedback, ...).
    """
    out = Path(out)
    rundir.write_json(out / "config.json", config)
    metrics_path = out / "metrics.jsonl"
    metrics_path.write_text("")
    results, rows, metric_rows = {}, [], []
    for rule in rules:
        res = sweep(model, task, rule=rule, desc=f"{rule:>4}", **sweep_kw)
        results[rule] = res
        rows += res.rows()
        m = res.metric_rows()
        metric_rows += m
        rundir.append_jsonl(metrics_path, m)
    plots.learning_curves(metric_rows, out / "curves.png", title=title or task.name)
    summary = report.summarize(rows)
    timing = {r: {"compile_s": round(res.compile_s, 3), "run_s": round(res.run_s, 3)} for r, res in results.items()}
    rundir.write_json(out / "summary.json", {"task": task.name, "results": rows, "by_rule": summary,
                                             "timing": timing})
    return results, rows, report.table(summary)
