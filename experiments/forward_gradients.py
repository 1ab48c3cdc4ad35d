"""The variance of forward gradients: weight vs activity perturbation (and node perturbation) as the network widens.

    python experiments/forward_gradients.py           # digits, MLP 64-w-w-10, w in 32/128/512 (~10 min on 2 CPU cores)
    python experiments/forward_gradients.py --quick   # tiny sizes (seconds; the tests use it)

Two parts, on scikit-learn's digits:

1. **The estimator** (at initialisation, no training): for each width, seed and rule, ``max(--ns)``
   draws of the rule's update on one batch; the cosine between the mean of ``n`` draws and BP's
   gradient for every ``n`` of ``--ns`` (:func:`fa_jax.analysis.estimators.cosines`), beside the
   value the formula gives weight perturbation (``1 / sqrt(1 + (D + 1) / n)``, D the params).
2. **Training**: every rule (and BP) at every width, one vmapped sweep each, its seed axis
   carrying the learning-rate grid ``--lrs`` times ``--seeds``; each rule reported at its best
   learning rate (by mean final test accuracy).

Writes <out>/config.json, metrics.jsonl, summary.json, estimator.md and training.md (the tables),
cosines.png (cosine to BP vs n, one panel per width) and curves.png (test accuracy, best lr).
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import jax
import numpy as np

import fa_jax as fj
from fa_jax.analysis import estimators
from fa_jax.runs import cli, plots, rundir, tables
from fa_jax.errors import InputError
from fa_jax.runs.study import Study
from fa_jax.training.state import init_state

RULES = ["fg(kind=weight)", "fg(kind=activity)", "node_pert"]
DEFAULT = {"widths": [32, 128, 512], "rules": RULES, "ns": [1, 4, 16, 64, 256], "seeds": 4, "estimate_batch": 32,
           "steps": 2000, "eval_every": 200, "batch_size": 32, "lrs": [3e-4, 1e-3, 3e-3], "optimizer": "adam"}
QUICK = {"widths": [8, 32], "ns": [1, 4, 16], "seeds": 2, "steps": 40, "eval_every": 20, "lrs": [1e-3]}


def parser():
    p = cli.ArgParser(prog="forward_gradients.py", description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=cli.csv(int), help="hidden widths (two hidden layers each)")
    p.add_argument("--rules", type=cli.rule_list(), help="comma-separated rules whose update is a random estimate")
    p.add_argument("--ns", type=cli.csv(int), help="draws averaged (each must divide the largest)")
    p.add_argument("--seeds", type=int, help="parameter draws (estimator) and seeds per learning rate (training)")
    p.add_argument("--estimate-batch", type=int, help="examples in the estimator's batch")
    p.add_argument("--steps", type=int, help="training steps (0: the estimator part only)")
    p.add_argument("--eval-every", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lrs", type=cli.csv(float), help="the learning-rate grid every rule is tuned over")
    p.add_argument("--optimizer", help="an fj.optimizer name (default adam)")
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    cli.add_run_flags(p, "forward_gradients")
    return p


def resolve(args) -> dict:
    """DEFAULT, then QUICK (with --quick), then the flags given; all checked before anything runs."""
    cfg = cli.settings(args, DEFAULT, QUICK)
    cfg["rules"] = [fj.rules.get(r).name for r in cfg["rules"]]  # each rule's normal form (fg(kind=weight) is fg)
    ns = cfg["ns"]
    if not ns or min(ns) < 1 or any(max(ns) % n for n in ns):
        raise InputError(f"--ns must be positive and each divide the largest, got {ns}")
    cli.check_positive("--lrs", cfg["lrs"])
    cli.check_positive("--widths", cfg["widths"])
    cli.check_run_sizes(cfg, ("seeds", "estimate_batch", "batch_size", "eval_every"), multiple=False)
    if cfg["steps"] < 0 or (cfg["steps"] and cfg["steps"] % cfg["eval_every"]):
        raise InputError(f"--steps must be 0 or a positive multiple of --eval-every "
                                   f"({cfg['eval_every']}), got {cfg['steps']}")
    return cfg


def estimate(cfg, task, models) -> list[dict]:
    """Part 1: one row per (rule, width, n) with the cosines' mean and std over groups and seeds."""
    rows, loss = [], fj.losses.get(task.default_loss)
    for w, model in models.items():
        for r in cfg["rules"]:
            per_n = {n: [] for n in cfg["ns"]}
            for s in range(cfg["seeds"]):
                k = jax.random.key(s)
                state = init_state(k, model, r, fj.optimizer("sgd", 1.0))  # the params and feedback only
                x, y = task.sample(jax.random.fold_in(k, 7), cfg["estimate_batch"])
                for n, c in estimators.cosines(model, r, loss, state.params, x, y, jax.random.fold_in(k, 8),
                                               cfg["ns"], state.feedback).items():
                    per_n[n] += [float(v) for v in c]
            n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(model.init(jax.random.key(0))))
            for n, c in per_n.items():
                rows.append({"rule": r, "width": w, "n": n, "cos_mean": float(np.mean(c)), "cos_std": float(np.std(c)),
                             "groups": len(c), "params": n_params,
                             "weight_fg_formula": float(estimators.weight_fg_cosine(n_params, n))})
            print(f"width {w}, {r}: cosine to BP " + ", ".join(f"n={n}: {np.mean(c):.3f}" for n, c in per_n.items()))
    return rows


EST_COLUMNS = ("rule", "width", "params", "n", ("cosine to BP (mean ± std)",
                                                lambda s: f"{s['cos_mean']:.3f} ± {s['cos_std']:.3f}"),
               ("weight-perturbation formula", lambda s: f"{s['weight_fg_formula']:.3f}"))


def plot_cosines(rows, path, widths):
    """Cosine to BP vs n per rule (log-log), one panel per width; the weight-perturbation formula dashed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(widths), figsize=(4 * len(widths), 3.4), sharey=True, squeeze=False)
    for ax, w in zip(axes[0], widths):
        mine = [r for r in rows if r["width"] == w]
        for i, rule in enumerate(dict.fromkeys(r["rule"] for r in mine)):  # overlapping rules stay visible
            pts = [r for r in mine if r["rule"] == rule]
            ax.errorbar([r["n"] for r in pts], [r["cos_mean"] for r in pts], [r["cos_std"] for r in pts],
                        marker="osx^v"[i % 5], ls=("-", "--", ":", "-.")[i % 4], ms=7 - i, capsize=2, label=rule)
        ns = [r["n"] for r in mine if r["rule"] == mine[0]["rule"]]
        ax.plot(ns, [estimators.weight_fg_cosine(mine[0]["params"], n) for n in ns], "k--", lw=1,
                label="formula, fg (weight)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"width {w} ({mine[0]['params']} params)")
        ax.set_xlabel("draws averaged (n)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cosine to BP's gradient")
    axes[0][0].legend(fontsize=7)
    return plots.save(fig, path, "forward gradients: cosine of the averaged estimate to BP's gradient")


def write_outputs(study, cfg, est_rows) -> dict:
    rundir.write_text(study.out / "estimator.md", tables.table(est_rows, EST_COLUMNS) + "\n")
    plot_cosines(est_rows, study.out / "cosines.png", cfg["widths"])
    out = {"estimator": est_rows}
    if study.rows:
        best = tables.best(tables.summarize(study.rows, ("width", "rule", "lr")), ("width", "rule"))
        cols = ("width", "rule", ("lr", lambda s: f"{s['lr']:g}"), "acc", "min_acc", "steps_to_95", "diverged")
        rundir.write_text(study.out / "training.md", tables.table(best, cols) + "\n")
        keep = {(b["width"], b["rule"], b["lr"]) for b in best}
        rows = [m for m in study.metric_rows if (m["width"], m["rule"], m["lr"]) in keep]
        plots.curves(rows, study.out / "curves.png", panel="width",
                     title="digits: test accuracy at each rule's best lr")
        out["best"] = best
    return out


@cli.guarded("forward_gradients.py")
def main(argv=None):
    args = parser().parse_args(argv)
    cfg = resolve(args)
    task = fj.data.digits("class")
    models = {w: fj.mlp([task.n_in, w, w, task.n_out]) for w in cfg["widths"]}
    train_rules = ["bp", *[r for r in cfg["rules"] if r != "bp"]]
    seeds = len(cfg["lrs"]) * cfg["seeds"]
    lr = list(np.repeat(cfg["lrs"], cfg["seeds"]))
    common = {"steps": cfg["steps"], "eval_every": cfg["eval_every"], "batch_size": cfg["batch_size"],
              "optimizer": cfg["optimizer"], "seeds": seeds, "lr": lr}
    if cfg["steps"]:
        Study.plan(({"model": models[w], "task": task, "rule": r} for w in models for r in train_rules), **common)
    study = Study.from_args(args, "forward_gradients", cfg, eval_every=cfg["eval_every"])
    est_rows = estimate(cfg, task, models)
    if cfg["steps"]:
        for w, model in models.items():
            for r in train_rules:
                study.sweep({"width": w, "rule": r}, model, task, rule=r, **common,
                            seed_labels=lambda s: {"lr": float(lr[s])})
    study.finish(lambda s: write_outputs(s, cfg, est_rows))
    print((study.out / "estimator.md").read_text().rstrip())
    if cfg["steps"]:
        print((study.out / "training.md").read_text().rstrip())
    print(study.time_report())
    extra = ", training.md, curves.png" if cfg["steps"] else ""
    print(f"wrote {study.out}/summary.json, estimator.md, cosines.png{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
