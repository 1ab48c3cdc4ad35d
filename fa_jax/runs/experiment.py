"""Compare learning rules on one task and write a run directory (the main job's engine).

``compare_rules`` runs one vmapped, jit-compiled :func:`fa_jax.sweep` per rule and
writes ``config.json`` first, ``metrics.jsonl`` as each rule finishes, the figures of
:func:`fa_jax.runs.redraw.redraw` (``curves.png``, ``loss.png``, alignment and norm plots with
diagnostics, ``embedding.npz``/``.png`` when asked) and ``summary.json`` last (so a
directory with a summary is a complete run).
"""

import json
from pathlib import Path

import jax

from fa_jax.runs import tables as report
from fa_jax.analysis import representations
from fa_jax.runs import rundir
from fa_jax.training import sharding
from fa_jax.runs.redraw import redraw
from fa_jax.training.sweep import sweep


def compare_rules(model, task, rules, out, config: dict, *, title=None, embed_layer=None, embed_method="pca",
                  resume: bool = False, checkpoint_every: int | None = None, checkpoints: bool = True,
                  keep_checkpoints: int = 2,
                  **sweep_kw):
    """Train every rule in ``rules`` on ``task``; returns ``(results, summary_rows, table_str)``.

    out: an existing writable folder (see :func:`fa_jax.runs.rundir.prepare`). config: the
    resolved configuration, written verbatim to ``config.json``. ``sweep_kw`` goes to
    :func:`fa_jax.sweep` (seeds, steps, batch_size, optimizer, lr, loss, feedback, diagnostics, ...).
    embed_layer: a hidden layer (1-based) to map in 2-D (``embed_method`` "pca" or "tsne")
    before and after training, for the first seed of each rule; ``None`` for no map.
    checkpoints: each rule's sweep saves to ``out/checkpoints/<rule>`` every
    ``checkpoint_every`` steps (default: about once a minute) and at its end, keeping the newest
    ``keep_checkpoints``; ``resume``
    continues a killed run in ``out`` from them (see :func:`fa_jax.runs.rundir.start`).
    """
    out = Path(out)
    if embed_layer is not None:
        representations.check_layer(model, embed_layer)
        representations.check_method(embed_method)
    pid, n_proc = jax.process_index(), jax.process_count()
    if n_proc > 1:  # several hosts: each trains its share of the seeds and writes its own shard
        seeds = sweep_kw.pop("seeds", 8)
        seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        sweep_kw["seeds"] = sharding.local_seeds(seeds)
    shard = "" if n_proc == 1 else f".p{pid}"
    if pid == 0:
        rundir.start(out, resume)
        if not (resume and (out / "config.json").is_file()):
            rundir.write_config(out, config)
    metrics_path = out / f"metrics{shard}.jsonl"
    metrics_path.write_text("")
    results, rows, metric_rows = {}, [], []
    for rule in rules:
        ckpt = rundir.checkpointing(out, rule + shard, checkpoint_every, checkpoints, keep_checkpoints)
        res = sweep(model, task, rule=rule, desc=f"{rule:>4}", **ckpt, **sweep_kw)
        results[rule] = res
        rows += res.rows()
        m = res.metric_rows()
        metric_rows += m
        rundir.append_jsonl(metrics_path, m)
    if n_proc > 1:
        rundir.write_json(out / f"summary_rows{shard}.json", rows)
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("fa_jax_compare_rules_done")
        if pid != 0:
            return results, rows, ""
        rows, metric_rows = merge_shards(out, n_proc)
    if embed_layer is not None:
        maps, labels = representations.representation_maps(model, results, task, embed_layer, embed_method)
        representations.save_maps(out / "embedding.npz", maps, labels, embed_layer, embed_method)
    redraw(out, title=title or task.name)
    summary = report.summarize(rows)
    timing = {r: {"compile_s": round(res.compile_s, 3), "run_s": round(res.run_s, 3)} for r, res in results.items()}
    rundir.write_json(out / "summary.json", {"task": task.name, "results": rows, "by_rule": summary,
                                             "timing": timing})
    return results, rows, report.table(summary)


def merge_shards(out, n_proc: int):
    """Merge per-process ``metrics.p{i}.jsonl`` / ``summary_rows.p{i}.json`` into ``metrics.jsonl``.

    Returns ``(summary_rows, metric_rows)`` sorted by rule order of appearance, then seed.
    """
    out = Path(out)
    rows, metric_rows = [], []
    for i in range(n_proc):
        rows += json.loads((out / f"summary_rows.p{i}.json").read_text())
        metric_rows += rundir.read_jsonl(out / f"metrics.p{i}.jsonl")
    order = {r: i for i, r in enumerate(dict.fromkeys(r["rule"] for r in rows))}
    rows.sort(key=lambda r: (order[r["rule"]], r["seed"]))
    metric_rows.sort(key=lambda r: (order[r["rule"]], r["seed"], r["step"]))
    (out / "metrics.jsonl").write_text("")
    rundir.append_jsonl(out / "metrics.jsonl", metric_rows)
    return rows, metric_rows
