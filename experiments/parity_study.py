"""Which learning rules learn sparse parities? A grid over methods x n x k x width x seeds.

    python experiments/parity_study.py                       # default grid, a few minutes on 2 CPU cores
    python experiments/parity_study.py --full                # the thesis chapter's sizes and larger n (one GPU)
    python experiments/parity_study.py --preset paper        # Daniely & Malach's MNIST-parity settings
    python experiments/parity_study.py --preset paper --dataset digits-parity   # same, offline
    python experiments/parity_study.py --preset paper --dataset mnist5k-parity  # offline, 5000 real MNIST digits
    python experiments/parity_study.py --quick               # seconds (tests, notebook)

Each cell (method, n, k, width) is one vmapped, jit-compiled sweep over the seeds. Writes
<out>/config.json, metrics.jsonl, summary.json (one row per method, n, k, width, seed),
table.md, accuracy_vs_n.png and heatmap_<method>.png, and prints the table.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.runs import cli, plots, rundir, tables
from fa_jax.runs import study as study_lib
from fa_jax.runs.study import Study

KEYS = ("method", "n", "k", "width")
DEFAULT = {"dataset": "parity", "distribution": "uniform", "methods": ["bp", "dfa", "ntk", "rf_gaussian", "rf_relu",
           "rf_linear"], "n": [10, 20, 30], "k": [2, 3], "width": [128], "seeds": 4, "steps": 8000,
           "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "loss": None, "eval_every": 250, "epochs": None,
           "optimizer_hyper": {}, "init": "he_uniform"}
PRESETS = {
    "default": {},
    # the thesis chapter's settings (width 512, batch 128) over a wider n range: sized for one GPU
    "full": {"n": [10, 20, 30, 50, 100], "k": [2, 3, 4], "width": [128, 512], "seeds": 16, "steps": 20000,
             "batch_size": 128, "eval_every": 500, "methods": ["bp", "dfa", "ntk", "ntk_copy", "rf_gaussian",
                                                             "rf_relu", "rf_linear"]},
    # emalach/ParityNN parity_for_nips.py: k = 3 images, width q = 512, batch 128, 20 epochs, hinge loss,
    # Keras Adadelta defaults (tf.keras >= 2: learning_rate 1e-3, rho 0.95, epsilon 1e-7), Glorot init
    "paper": {"dataset": "mnist-parity", "n": [3], "k": [3], "width": [512], "batch_size": 128, "epochs": 20,
              "loss": "hinge", "optimizer": "adadelta", "lr": 1e-3, "optimizer_hyper": {"rho": 0.95, "eps": 1e-7},
              "init": "glorot_uniform", "methods": ["bp", "dfa", "ntk", "rf_gaussian", "rf_relu"], "seeds": 2},
    "quick": {"n": [6, 10], "k": [2], "width": [32], "seeds": 2, "steps": 200, "eval_every": 50,
              "methods": ["bp", "dfa", "ntk", "rf_relu"]},
}


def parser():
    p = cli.ArgParser(prog="parity_study.py", description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=list(PRESETS), default="default", help="settings to start from")
    p.add_argument("--full", action="store_const", const="full", dest="preset", help="same as --preset full")
    p.add_argument("--quick", action="store_const", const="quick", dest="preset", help="same as --preset quick")
    p.add_argument("--dataset", help=f"one of {', '.join(fj.data.DATASETS)}")
    p.add_argument("--distribution", help="parity input distribution: uniform or mixture (Daniely & Malach)")
    p.add_argument("--methods", type=cli.rule_list(), help="comma-separated rules, e.g. bp,dfa,ntk,rf_gaussian")
    p.add_argument("--n", type=cli.csv(int), help="input bits (parity) or images (image parity), e.g. 10,20,40")
    p.add_argument("--k", type=cli.csv(int), help="relevant bits / images, e.g. 2,3")
    p.add_argument("--width", type=cli.csv(int), help="hidden widths (one hidden layer), e.g. 128,512")
    p.add_argument("--seeds", type=int, help="seeds per cell (vmapped)")
    p.add_argument("--steps", type=int)
    p.add_argument("--epochs", type=int, help="image parity: steps = epochs x (train images / batch size)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer")
    p.add_argument("--lr", type=float)
    p.add_argument("--loss", help="default: the task's (bce)")
    p.add_argument("--init", help="weight init of the trainable layers")
    p.add_argument("--eval-every", type=int)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets folder (mnist-parity)")
    p.add_argument("--offline", action="store_true", help="mnist-parity: never download, use only --data-dir")
    cli.add_run_flags(p, "parity_study")
    return p


def resolve(args) -> dict:
    """Defaults, then the preset, then explicit flags; validated (one-line ValueError) before any compile."""
    cfg = {**DEFAULT, **PRESETS[args.preset]}
    for key in DEFAULT:
        if getattr(args, key, None) is not None:
            cfg[key] = getattr(args, key)
    for m in cfg["methods"]:
        fj.rules.get(m)
    for name in ("n", "k", "width"):
        for v in cfg[name]:
            if v < 1:
                raise InputError(f"--{name} values must be >= 1, got {v}")
    for n in cfg["n"]:
        for k in cfg["k"]:
            if k > n:
                raise InputError(f"k={k} > n={n} in the grid: need k <= n for every cell")
    cli.check_run_sizes(cfg, multiple=False)  # --epochs may still set steps and eval_every
    if cfg["epochs"] is not None:
        cli.check_run_sizes(cfg, ("epochs",), multiple=False)
    fj.optimizer(cfg["optimizer"], cfg["lr"], **cfg["optimizer_hyper"])  # typos answer before the data loads
    if cfg["loss"] is not None:
        fj.losses.get(cfg["loss"])
    fj.init.get(cfg["init"])
    return cfg


@cli.guarded("parity_study.py")
def main(argv=None):
    args = parser().parse_args(argv)
    cfg = resolve(args)
    if cfg["epochs"] is not None and cfg["dataset"] == "parity":
        raise InputError("--epochs applies to image parity (digits-parity, mnist-parity, mnist5k-parity); use --steps")
    tasks = {(n, k): fj.data.parity_task(cfg["dataset"], n, k, distribution=cfg["distribution"],
                                         data_seed=args.data_seed, data_dir=args.data_dir, download=not args.offline)
             for n in cfg["n"] for k in cfg["k"]}
    if cfg["epochs"] is not None:
        spe = fj.data.steps_per_epoch(next(iter(tasks.values())), cfg["batch_size"])
        cfg["steps"], cfg["eval_every"] = cfg["epochs"] * spe, spe
    cli.check_multiple(cfg["steps"], cfg["eval_every"])
    sweep_kw = {"seeds": cfg["seeds"], "steps": cfg["steps"], "batch_size": cfg["batch_size"],
                "optimizer": cfg["optimizer"], "lr": cfg["lr"], "loss": cfg["loss"], "eval_every": cfg["eval_every"],
                "optimizer_hyper": cfg["optimizer_hyper"] or None}
    cells = study_lib.product(method=cfg["methods"], n=cfg["n"], k=cfg["k"], width=cfg["width"])
    model = lambda c: fj.mlp([tasks[c["n"], c["k"]].n_in, c["width"], 1], init=cfg["init"])  # noqa: E731
    Study.plan(({"model": model(c), "task": tasks[c["n"], c["k"]], "rule": c["method"]} for c in cells),
               **sweep_kw)  # every cell checked before --out opens
    study = Study.from_args(args, "parity_study", {"preset": args.preset, **cfg, "data_seed": args.data_seed,
                                                   "config": args.config, "cells": len(cells)},
                            eval_every=cfg["eval_every"])

    task0 = next(iter(tasks.values()))
    print(f"{cfg['dataset']} ({cfg['distribution']}): {len(cells)} cells x {cfg['seeds']} seeds x "
          f"{cfg['steps']} steps -> {study.out}")
    for c in cells:
        study.sweep(c, model(c), tasks[c["n"], c["k"]], rule=c["method"], name=study_lib.cell_name(c), **sweep_kw)
    title = f"{cfg['dataset']} ({cfg['distribution']}), {cfg['seeds']} seeds, {cfg['steps']} steps"

    def write(s):
        by_cell = tables.summarize(s.rows, KEYS)
        rundir.write_text(s.out / "table.md", tables.table(by_cell, (*KEYS, *tables.GRID_TABLE)) + "\n")
        plots.accuracy_vs_n(s.rows, s.out / "accuracy_vs_n.png", title=title)
        for method in cfg["methods"]:
            plots.heatmap(s.rows, s.out / f"heatmap_{method}.png", method, title=title)
        return {"dataset": cfg["dataset"], "distribution": cfg["distribution"], "task": task0.name,
                "by_cell": by_cell, "sweep_seconds": round(s.seconds, 1)}

    study.finish(write)
    print((study.out / "table.md").read_text().rstrip())
    print(study.time_report())
    print(f"wrote {study.out}/summary.json, table.md, "
          f"accuracy_vs_n.png, heatmap_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
