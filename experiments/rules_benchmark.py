"""Every learning rule on every task: parity, digits and MNIST with MLPs and conv nets.

    python experiments/rules_benchmark.py           # 16 rules x 6 tasks, 4 seeds x 3 lrs (~1.5 h, 2 CPU cores)
    python experiments/rules_benchmark.py --quick   # tiny nets, few steps (a smoke test; the tests use it)
    python experiments/rules_benchmark.py --tasks parity,digits-mlp --rules bp,kp,wm

Each (task, rule) cell is one vmapped sweep whose seed axis carries the learning-rate grid
(``--lrs``) times ``--seeds`` (each learning rate lives in the optimizer's state through
``optax.inject_hyperparams``), so every rule is compared at its own best learning rate (by
mean final test accuracy, the optimizer study's choice). The mnist5k tasks are ~6x dearer per
step, so when their digits counterpart ran in the same study they train each rule at its
digits best learning rate only (``lr_from``). A rule that cannot run a task's model (pepita and
ff on conv nets) is skipped and listed. Writes <out>/config.json, metrics.jsonl, summary.json,
table.md, accuracy.png (bars with seed spread), curves.png, alignment_<task>.png (angle of each
layer's update to BP's vs step) and prints the table.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import numpy as np

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.runs import cli, plots, rundir, tables
from fa_jax.runs.study import Study

RULES = ["bp", "fa", "dfa", "usf", "frsf", "brsf", "kp", "wm", "sdfa", "drtp", "pepita",
         "local", "ff", "fg", "fg(kind=activity)", "node_pert"]
# name: data, model (widths before --scale), default steps and evaluation interval, lr_from
TASKS = {
    "parity": {"data": ("parity", 30, 3), "model": ("mlp", [256, 256]), "steps": 1500, "eval_every": 100},
    "digits-mlp": {"data": ("digits",), "model": ("mlp", [128, 128]), "steps": 2000, "eval_every": 100},
    "mnist5k-mlp": {"data": ("flat_images", "mnist5k"), "model": ("mlp", [256, 256]), "steps": 1000,
                    "eval_every": 100, "lr_from": "digits-mlp"},
    "digits-lecture_cnn": {"data": ("images", "digits"), "model": ("lecture_cnn", 0.5), "steps": 1500,
                           "eval_every": 100},
    "digits-allconv": {"data": ("images", "digits"), "model": ("allconv", 0.5), "steps": 1500, "eval_every": 100},
    "mnist5k-lecture_cnn": {"data": ("images", "mnist5k"), "model": ("lecture_cnn", 0.25), "steps": 1000,
                            "eval_every": 100, "lr_from": "digits-lecture_cnn"},
    "mnist5k-allconv": {"data": ("images", "mnist5k"), "model": ("allconv", 0.25), "steps": 1000,
                        "eval_every": 100, "lr_from": "digits-allconv"},
}
# mnist5k-allconv is left out of the default run (about 15 more minutes on 2 CPU cores): --tasks adds it
DEFAULT = {"tasks": [t for t in TASKS if t != "mnist5k-allconv"], "rules": RULES, "lrs": [3e-4, 1e-3, 3e-3], "seeds": 4, "steps": None,
           "eval_every": None, "batch_size": 32, "optimizer": "adam", "scale": 1.0, "diagnostics": True}
QUICK = {"tasks": ["parity", "digits-lecture_cnn"], "rules": ["bp", "kp", "sdfa", "pepita"], "lrs": [1e-3], "seeds": 2, "steps": 40, "eval_every": 20,
         "scale": 0.125}
LATE = 0.2  # "still improving" compares the last evaluation with the one LATE of the way before the end


def parser():
    p = cli.ArgParser(prog="rules_benchmark.py", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=cli.csv(), help=f"comma-separated, from {', '.join(TASKS)}")
    p.add_argument("--rules", type=cli.rule_list(), help="comma-separated rules or specs ('kp(lam=0.99;b0=w)')")
    p.add_argument("--lrs", type=cli.csv(float), help="the learning-rate grid every rule is tuned over")
    p.add_argument("--seeds", type=int, help="seeds per learning rate (vmapped with the grid)")
    p.add_argument("--steps", type=int, help="training steps of every task (default: each task's own)")
    p.add_argument("--eval-every", type=int, help="steps between evaluations (default: each task's own)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", help="an fj.optimizer name (default adam)")
    p.add_argument("--scale", type=float, help="multiplies every model's width (default 1)")
    p.add_argument("--no-diagnostics", dest="diagnostics", action="store_false", default=None,
                   help="do not record the per-layer alignment with BP (recorded by default)")
    p.add_argument("--quick", action="store_true", help="tiny nets and few steps for a smoke test")
    cli.add_run_flags(p, "rules_benchmark")
    return p


def resolve(args) -> dict:
    """The run's settings: DEFAULT, then QUICK (with --quick), then what was given; all checked."""
    cfg = cli.settings(args, DEFAULT, QUICK)
    cli.check_known(cfg["tasks"], list(TASKS), "task")
    for r in cfg["rules"]:
        fj.rules.get(r)
    cli.check_positive("--lrs", cfg["lrs"])
    if not cfg["scale"] > 0:
        raise InputError(f"--scale must be > 0, got {cfg['scale']}")
    cli.check_run_sizes(cfg, ("seeds", "batch_size"), multiple=False)
    for t in cfg["tasks"]:
        steps, every = cfg["steps"] or TASKS[t]["steps"], cfg["eval_every"] or TASKS[t]["eval_every"]
        cli.check_run_sizes({"steps": steps, "eval_every": every}, ("steps", "eval_every"))
    return cfg


def build(name: str, scale: float):
    """(task, model) of a TASKS entry with its widths times ``scale``."""
    spec = TASKS[name]
    kind, *data = spec["data"]
    task = {"parity": lambda: fj.data.parity(*data), "digits": lambda: fj.data.digits("class"),
            "images": lambda: fj.data.images(*data), "flat_images": lambda: flat(fj.data.images(*data))}[kind]()
    arch, size = spec["model"]
    if arch == "mlp":
        return task, fj.mlp([task.n_in] + [max(1, round(w * scale)) for w in size] + [task.n_out])
    return task, fj.cnn.get(arch, task.input_shape, task.n_out, width=size * scale)


def flat(task):
    """An image task's pixels as flat feature vectors (H * W * C), for an MLP."""
    n_tr, n_te = len(task.x_train), len(task.x_test)
    return fj.data.from_arrays(task.x_train.reshape(n_tr, -1), task.y_train, task.x_test.reshape(n_te, -1),
                               task.y_test, n_out=task.n_out, name=f"{task.name}-flat")


def task_kw(cfg: dict, name: str) -> dict:
    """The sweep's ``steps`` and ``eval_every`` on task ``name``: the flags where given, else the task's own."""
    return {"steps": cfg["steps"] or TASKS[name]["steps"], "eval_every": cfg["eval_every"] or TASKS[name]["eval_every"]}


def grid_kw(lrs, seeds: int) -> dict:
    """The sweep's ``seeds`` and ``lr`` for the learning rates ``lrs``: each of them x ``seeds`` on the seed axis."""
    return {"seeds": len(lrs) * seeds, "lr": list(np.repeat(lrs, seeds))}


def late_gain(metric_rows, steps: int):
    """Mean test accuracy at the last evaluation minus at the one ``LATE`` of the way before (None if
    no seed has both): > 0.005 says the curve had not flattened."""
    by_step = {}
    for m in metric_rows:
        if m.get("test_acc") is not None:
            by_step.setdefault(m["step"], []).append(m["test_acc"])
    if not by_step:
        return None
    last = max(by_step)
    early = min(by_step, key=lambda s: abs(s - (1 - LATE) * steps))
    return float(np.mean(by_step[last]) - np.mean(by_step[early])) if early != last else None


def final_layers(metric_rows, metric):
    """Per-layer mean over seeds of ``metric`` at the last logged step (a list), or None."""
    stats = tables.final_layer_stats(metric_rows, metric)
    return None if not stats else [round(float(v), 1) for v in next(iter(stats.values()))[0]]


def best_lrs(study) -> list[dict]:
    """The summary row of each (task, rule) at its best learning rate (by mean final test accuracy)."""
    return tables.best(tables.summarize(study.rows, ("task", "rule", "lr")), ("task", "rule"))


def best_cells(study) -> list[dict]:
    """One row per (task, rule) at its best learning rate: the summary fields plus angles and late gain."""
    out = best_lrs(study)  # in the order the cells ran: tasks, then rules
    for b in out:
        mine = [m for m in study.metric_rows if (m["task"], m["rule"], m["lr"]) == (b["task"], b["rule"], b["lr"])]
        b["late_gain"] = late_gain(mine, b["steps"])
        b["angle_to_bp"] = final_layers(mine, "grad_alignment_deg")
        b["weight_alignment"] = final_layers(mine, "weight_alignment_deg")
    return out


def _degrees(v):
    return "—" if v is None else " / ".join(f"{x:.0f}" for x in v)


COLUMNS = ("task", "rule", ("lr", lambda s: f"{s['lr']:g}"), "acc", "min_acc",
           ("angle to BP per layer (°)", lambda s: _degrees(s["angle_to_bp"])),
           ("weight alignment (°)", lambda s: _degrees(s["weight_alignment"])), "steps_to_95",
           ("last fifth", lambda s: "—" if s["late_gain"] is None else f"{s['late_gain']:+.3f}"), "diverged")


def write_outputs(study, cfg, skipped) -> dict:
    """table.md, accuracy.png, curves.png and alignment_<task>.png; the summary's fields."""
    best = best_cells(study)
    note = "".join(f"\nnot run: {r} on {t} ({why})" for t, r, why in skipped)
    rundir.write_text(study.out / "table.md", tables.table(best, COLUMNS) + "\n" + note + "\n")
    plots.grouped_bars(best, study.out / "accuracy.png", group="rule", hue="task",
                       panels=[("mean_acc", "std_acc", "test accuracy (best lr)")],
                       title="test accuracy at each rule's best learning rate (mean ± std over seeds)")
    keep = {(b["task"], b["rule"], b["lr"]) for b in best}
    rows = [m for m in study.metric_rows if (m["task"], m["rule"], m["lr"]) in keep]
    plots.curves(rows, study.out / "curves.png", panel="task", title="test accuracy at each rule's best lr")
    for t in cfg["tasks"]:
        plots.layer_curves([m for m in rows if m["task"] == t], study.out / f"alignment_{t}.png",
                           title=f"{t}: angle between each layer's update and BP's")
    return {"best": best, "skipped": [{"task": t, "rule": r, "reason": why} for t, r, why in skipped],
            "by_lr": tables.summarize(study.rows, ("task", "rule", "lr"))}


@cli.guarded("rules_benchmark.py")
def main(argv=None):
    args = parser().parse_args(argv)
    cfg = resolve(args)
    built = {t: build(t, cfg["scale"]) for t in cfg["tasks"]}
    cells, skipped = [], []
    for t in cfg["tasks"]:
        for r in cfg["rules"]:
            try:
                fj.rules.check_model(r, built[t][1])
                cells.append((t, r))
            except InputError as err:
                skipped.append((t, r, str(err)))
    n_lr, seeds = len(cfg["lrs"]), cfg["seeds"]
    # every cell that runs, checked before --out opens, with the whole grid (a cell with lr_from trains
    # it when its digits counterpart left no best learning rate, else one lr of it: fewer seeds); the
    # memory estimate first, so an enormous --seeds is refused before grid_kw builds its lr list
    plan = [{"model": built[t][1], "task": built[t][0], "rule": r, **task_kw(cfg, t)} for t, r in cells]
    common = {"batch_size": cfg["batch_size"], "optimizer": cfg["optimizer"], "diagnostics": cfg["diagnostics"]}
    fj.memory.check_all(plan, seeds=n_lr * seeds, **common)
    Study.plan(({**p, **grid_kw(cfg["lrs"], seeds)} for p in plan), **common)
    study = Study.from_args(args, "rules_benchmark", {**cfg, "config": args.config,
                                                      "task_specs": {t: TASKS[t] for t in cfg["tasks"]}},
                            eval_every=cfg["eval_every"] or 100)
    print(f"{len(cells)} cells ({len(skipped)} skipped) x {n_lr} learning rates x {seeds} seeds -> {study.out}")
    for t, r, why in skipped:
        print(f"not run: {r} on {t}: {why}")
    for t, r in cells:
        task, model = built[t]
        src = TASKS[t].get("lr_from")
        if src in cfg["tasks"] and n_lr > 1:
            done = [s for s in best_lrs(study) if (s["task"], s["rule"]) == (src, r)]
            lrs = [done[0]["lr"]] if done else cfg["lrs"]
        else:
            lrs = cfg["lrs"]
        study.sweep({"task": t, "rule": r}, model, task, rule=r, **task_kw(cfg, t), **grid_kw(lrs, seeds),
                    batch_size=cfg["batch_size"], optimizer=cfg["optimizer"], diagnostics=cfg["diagnostics"],
                    seed_labels=lambda seed, lrs=lrs: {"lr": float(lrs[seed // seeds])})
    study.finish(lambda s: write_outputs(s, cfg, skipped))
    print((study.out / "table.md").read_text().rstrip())
    print(study.time_report())
    print(f"wrote {study.out}/summary.json, table.md, accuracy.png, curves.png, alignment_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
