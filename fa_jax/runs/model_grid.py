"""Rules x models on one task: one vmapped :func:`fa_jax.sweep` per (model, rule), one run directory.

``compare_models`` writes ``config.json`` first, ``metrics.jsonl`` as each sweep finishes
(rows carry ``model``), ``curves.png`` (one panel per model, one line per rule) and
``summary.json`` last, and returns a markdown table: model | params | rule | test accuracy.
"""


import jax
import numpy as np

from fa_jax.runs import plots
from fa_jax.runs import tables as report
from fa_jax.runs import rundir
from fa_jax.training.sweep import sweep


def n_params(model) -> int:
    """Trainable scalars of ``model`` (from its init's shapes; nothing is computed)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def compare_models(models: dict, task, rules, out, config: dict, *, title=None, resume: bool = False,
                   checkpoint_every: int | None = None, checkpoints: bool = True, keep_checkpoints: int = 2,
                   before_summary=None,
                   **sweep_kw):
    """Train every rule on every model; returns ``(results, summary_rows, table_str)``.

    models: {name: model} (e.g. ``fj.cnn.get(...)``); results: {(model, rule): SweepResult}.
    ``sweep_kw`` goes to :func:`fa_jax.sweep` (seeds, steps, batch_size, lr, feedback, ...).
    Checkpoints (``out/checkpoints/<model>-<rule>``) and ``resume`` as in
    :func:`fa_jax.runs.experiment.compare_rules`. ``before_summary(out)``: writes any further
    outputs (e.g. alignment tables) before ``summary.json``, which comes last.
    """
    out = rundir.start(out, resume)
    if not (resume and (out / "config.json").is_file()):
        rundir.write_config(out, config)
    metrics_path = out / "metrics.jsonl"
    results, rows, metric_rows = {}, [], []
    sizes = {name: n_params(m) for name, m in models.items()}
    for name, model in models.items():
        for rule in rules:
            ckpt = rundir.checkpointing(out, f"{name}-{rule}", checkpoint_every, checkpoints, keep_checkpoints)
            res = sweep(model, task, rule=rule, desc=f"{name}/{rule}", **ckpt, **sweep_kw)
            results[(name, rule)] = res
            rows += [{"model": name, **r} for r in res.rows()]
            m = [{"model": name, **r} for r in res.metric_rows()]
            metric_rows += m
            rundir.append_jsonl(metrics_path, m)
    grid_curves(metric_rows, out / "curves.png", title=title or task.name)
    summary = []
    for name in models:
        for s in report.summarize([r for r in rows if r["model"] == name]):
            summary.append({"model": name, "params": sizes[name], **s})
    timing = {f"{m}/{r}": {"compile_s": round(res.compile_s, 3), "run_s": round(res.run_s, 3)}
              for (m, r), res in results.items()}
    if before_summary is not None:
        before_summary(out)
    rundir.write_json(out / "summary.json", {"task": task.name, "results": rows, "by_model_rule": summary,
                                             "timing": timing})
    return results, summary, table(summary)


def table(summary: list[dict]) -> str:
    """Markdown: model | params | rule | test acc (mean ± std) | min acc | diverged | seconds."""
    lines = ["| model | params | rule | test acc (mean ± std) | min acc | diverged | seconds |",
             "|---|---|---|---|---|---|---|"]
    for s in summary:
        acc = "—" if s["mean_acc"] is None else f"{s['mean_acc']:.3f} ± {s['std_acc']:.3f}"
        mn = "—" if s["min_acc"] is None else f"{s['min_acc']:.3f}"
        lines.append(f"| {s['model']} | {s['params']:,} | {s['rule']} | {acc} | {mn} | {s['diverged']}/{s['seeds']} "
                     f"| {s['seconds']:.1f} |")
    return "\n".join(lines)


def grid_curves(rows, path, metric="test_acc", ylabel="test accuracy", title=None):
    """One panel per model: mean ± std over seeds of ``metric`` vs step, one line per rule."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (loaded on first use)
    names = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), dpi=100, sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        for rule, (steps, vals) in plots._by_rule([r for r in rows if r["model"] == name], metric).items():
            with np.errstate(all="ignore"):
                mean, std = np.nanmean(vals, 0), np.nanstd(vals, 0)
            ax.plot(steps, mean, label=rule)
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend()
    return plots.save(fig, path, title)
