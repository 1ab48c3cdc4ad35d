"""Compare learning rules on one task and write a run directory (the main job's engine).

``compare_rules`` runs one vmapped, jit-compiled :func:`fa_jax.sweep` per rule and
writes ``config.json`` first, ``metrics.jsonl`` as each rule finishes, the figures of
:func:`fa_jax.redraw.redraw` (``curves.png``, ``loss.png``, alignment and norm plots with
diagnostics, ``embedding.npz``/``.png`` when asked) and ``summary.json`` last (so a
directory with a summary is a complete run).
"""

from pathlib import Path

from fa_jax import report, representations, rundir
from fa_jax.redraw import redraw
from fa_jax.train import sweep


def compare_rules(model, task, rules, out, config: dict, *, title=None, embed_layer=None, embed_method="pca",
                  **sweep_kw):
    """Train every rule in ``rules`` on ``task``; returns ``(results, summary_rows, table_str)``.

    out: an existing writable folder (see :func:`fa_jax.rundir.prepare`). config: the
    resolved configuration, written verbatim to ``config.json``. ``sweep_kw`` goes to
    :func:`fa_jax.sweep` (seeds, steps, batch_size, optimizer, lr, loss, feedback, diagnostics, ...).
    embed_layer: a hidden layer (1-based) to map in 2-D (``embed_method`` "pca" or "tsne")
    before and after training, for the first seed of each rule; ``None`` for no map.
    """
    out = Path(out)
    if embed_layer is not None:
        representations.check_layer(model, embed_layer)
        representations.check_method(embed_method)
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
    if embed_layer is not None:
        maps, labels = representations.representation_maps(model, results, task, embed_layer, embed_method)
        representations.save_maps(out / "embedding.npz", maps, labels, embed_layer, embed_method)
    redraw(out, title=title or task.name)
    summary = report.summarize(rows)
    timing = {r: {"compile_s": round(res.compile_s, 3), "run_s": round(res.run_s, 3)} for r, res in results.items()}
    rundir.write_json(out / "summary.json", {"task": task.name, "results": rows, "by_rule": summary,
                                             "timing": timing})
    return results, rows, report.table(summary)
