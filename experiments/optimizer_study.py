"""Which optimizer for which rule? BP and DFA (and FA) x the optimizer zoo x a small learning-rate grid.

    python experiments/optimizer_study.py            # sparse parity + digits-parity, a few minutes on 2 CPU cores
    python experiments/optimizer_study.py --quick    # seconds (tests)

Every (dataset, rule, optimizer) is one vmapped sweep: its learning-rate grid and its seeds
share the seed axis (each optimizer's learning rate lives in its state through
``optax.inject_hyperparams``). Each (learning rate, seed) pair gets its own seed id, so runs
at different learning rates start from different draws. Writes <out>/config.json,
metrics.jsonl, summary.json, table.md and curves_<dataset>.png (test accuracy at each
optimizer's best learning rate), and prints the table of the best learning rate per
optimizer and rule.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import numpy as np

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.runs import cli, plots, rundir, tables
from fa_jax.runs import study as study_lib
from fa_jax.runs.study import Study

# centre of each optimizer's learning-rate grid (the grid is centre x --lr-factors)
LR_CENTRE = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.03, "adadelta": 1.0, "rmsprop": 3e-4,
             "adam": 1e-3, "adamw": 1e-3, "nadam": 1e-3}
DATASETS = {"parity": ("parity", 16, 3), "digits-parity": ("digits-parity", 2, 2),
            "mnist5k-parity": ("mnist5k-parity", 2, 2)}
# one hidden layer (where FA and DFA coincide, so FA is opt-in: --rules bp,fa,dfa --depth 2)
DEFAULT = {"datasets": ["parity", "digits-parity"], "rules": ["bp", "dfa"], "optimizers": list(LR_CENTRE),
           "lr_factors": [1 / 3, 1.0, 3.0], "seeds": 2, "steps": 2000, "batch_size": 64, "width": 128, "depth": 1,
           "eval_every": 100}
QUICK = {"datasets": ["parity"], "rules": ["bp", "dfa"], "optimizers": ["sgd", "adam"], "lr_factors": [1.0, 3.0],
         "seeds": 2, "steps": 100, "width": 16, "eval_every": 50}
KEYS = ("dataset", "rule", "optimizer")


def parser():
    p = cli.ArgParser(prog="optimizer_study.py", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", type=cli.csv(), help=f"from {', '.join(DATASETS)}")
    p.add_argument("--rules", type=cli.rule_list(), help="comma-separated rules (default bp,dfa)")
    p.add_argument("--optimizers", type=cli.csv(), help=f"from {', '.join(LR_CENTRE)}")
    p.add_argument("--lr-factors", type=cli.csv(float), help="learning-rate grid as multiples of each centre")
    p.add_argument("--seeds", type=int, help="seeds per learning rate")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--depth", type=int, help="hidden layers (default 1, where FA = DFA; 2 to tell them apart)")
    p.add_argument("--eval-every", type=int)
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    cli.add_run_flags(p, "optimizer_study")
    return p


def resolve(args) -> dict:
    cfg = cli.settings(args, DEFAULT, QUICK)
    for d in cfg["datasets"]:
        if d not in DATASETS:
            raise InputError(f"unknown dataset {d!r}; known: {', '.join(DATASETS)}")
    for r in cfg["rules"]:
        fj.rules.get(r)
    for o in cfg["optimizers"]:
        if o not in LR_CENTRE:
            raise InputError(f"unknown optimizer {o!r}; known: {', '.join(LR_CENTRE)}")
    cli.check_positive("--lr-factors", cfg["lr_factors"])
    cli.check_run_sizes(cfg, ("seeds", "steps", "batch_size", "width", "depth", "eval_every"))
    return cfg


def best_lr(rows) -> list[dict]:
    """Per (dataset, rule, optimizer): the learning rate with the best mean final test accuracy."""
    return tables.best(tables.summarize(rows, KEYS + ("lr",)), KEYS)


@cli.guarded("optimizer_study.py")
def main(argv=None):
    args = parser().parse_args(argv)
    cfg = resolve(args)
    tasks = {d: fj.data.parity_task(*DATASETS[d]) for d in cfg["datasets"]}
    n_lr, seeds = len(cfg["lr_factors"]), cfg["seeds"]
    sweep_kw = {"steps": cfg["steps"], "batch_size": cfg["batch_size"], "eval_every": cfg["eval_every"],
                "seeds": n_lr * seeds}
    cells = study_lib.product(dataset=cfg["datasets"], rule=cfg["rules"], optimizer=cfg["optimizers"])
    model = lambda c: fj.mlp([tasks[c["dataset"]].n_in] + [cfg["width"]] * cfg["depth"] + [1])  # noqa: E731
    lrs = {o: [float(LR_CENTRE[o] * f) for f in cfg["lr_factors"]] for o in cfg["optimizers"]}
    lr = lambda c: list(np.repeat(lrs[c["optimizer"]], seeds))  # noqa: E731  (the grid, each lr x the seeds)
    plan = [{"model": model(c), "task": tasks[c["dataset"]], "rule": c["rule"], "optimizer": c["optimizer"]}
            for c in cells]
    fj.memory.check_all(plan, **sweep_kw)  # first: an enormous --seeds is refused before lr(c) builds its list
    Study.plan(({**p, "lr": lr(c)} for p, c in zip(plan, cells)), **sweep_kw)  # every cell, before --out opens
    study = Study.from_args(args, "optimizer_study", {**cfg, "lrs": lrs, "config": args.config,
                                                      "tasks": {d: t.name for d, t in tasks.items()}},
                            eval_every=cfg["eval_every"])

    print(f"{len(cells)} sweeps x {n_lr} learning rates x {seeds} seeds x {cfg['steps']} steps -> {study.out}")
    for c in cells:
        study.sweep(c, model(c), tasks[c["dataset"]], rule=c["rule"], name=study_lib.cell_name(c),
                    optimizer=c["optimizer"], lr=lr(c),
                    seed_labels=lambda seed, c=c: {"lr": lrs[c["optimizer"]][seed // seeds]}, **sweep_kw)

    def write(s):
        best = best_lr(s.rows)
        rundir.write_text(s.out / "table.md", tables.table(best, (*KEYS, "lr", *tables.GRID_TABLE)) + "\n")
        for d in cfg["datasets"]:
            keep = {(b["rule"], b["optimizer"], b["lr"]) for b in best if b["dataset"] == d}
            sub = [m for m in s.metric_rows if m["dataset"] == d and (m["rule"], m["optimizer"], m["lr"]) in keep]
            plots.curves(sub, s.out / f"curves_{d}.png", panel="optimizer", line="rule",
                         title=f"{tasks[d].name}: test accuracy at each optimizer's best learning rate")
        return {"best": best, "by_lr": tables.summarize(s.rows, KEYS + ("lr",)), "sweep_seconds": round(s.seconds, 1)}

    study.finish(write)
    print((study.out / "table.md").read_text().rstrip())
    print(study.time_report())
    print(f"wrote {study.out}/summary.json, table.md, curves_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
