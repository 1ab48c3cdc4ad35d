"""FA and DFA under each named feedback scheme, side by side: final accuracy and alignment with BP.

    python experiments/feedback_schemes.py           # digits and 3-sparse parity, 4 seeds per scheme
    python experiments/feedback_schemes.py --quick   # tiny sizes

Schemes are ``fj.init_feedback(..., scheme=)`` presets (``default`` = the library's default
uniform fan-in draw). Every (task, rule, scheme) is one vmapped sweep with diagnostics on.
Writes <out>/config.json, metrics.jsonl (rows carry ``task`` and ``scheme``), summary.json,
schemes_<task>.png and schemes.md (the table), and prints the table.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import numpy as np

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.runs import cli, plots, rundir, tables
from fa_jax.runs.study import Study

TASKS = ("digits", "parity")
SCHEMES = ("default", *fj.FEEDBACK_SCHEMES)
QUICK = {"seeds": 2, "steps": 200, "width": 32, "eval_every": 100, "parity_n": 8, "parity_k": 2}


def parser():
    p = cli.ArgParser(prog="feedback_schemes.py", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=cli.csv(), default=list(TASKS), help=f"from {', '.join(TASKS)}")
    p.add_argument("--rules", type=cli.rule_list(), default=["fa", "dfa"])
    p.add_argument("--schemes", type=cli.csv(), default=list(SCHEMES), help=f"from {', '.join(SCHEMES)}")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--activation", default="tanh")
    cli.add_training_flags(p, seeds=4, steps=1000, batch_size=64, eval_every=100, optimizer_help=(
        "adam normalises update scale, so schemes that differ only in scale tie; try sgd"))
    p.add_argument("--parity-n", type=int, default=16)
    p.add_argument("--parity-k", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    cli.add_run_flags(p, "feedback-schemes")
    return p


def feedback_of(scheme) -> dict:
    """The sweep's ``feedback`` for ``scheme`` (``default``: the library's own draw)."""
    return {} if scheme == "default" else {"scheme": scheme}


def alignment(res) -> dict:
    """Per seed of one sweep: the final angle to BP's gradient, averaged over the hidden layers
    (the output layer's update is exact), as ``{seed: degrees}`` (None where the seed diverged)."""
    align = res.diagnostics["grad_alignment_deg"][:, -1, :-1]
    with np.errstate(all="ignore"):
        per_seed = np.nanmean(align, axis=1)
    return {int(s): None if d or not np.isfinite(a) else float(a) for s, a, d in zip(res.seeds, per_seed, res.diverged)}


def by_scheme(rows) -> list[dict]:
    """One table row per (task, rule, scheme): accuracy and alignment, mean and std over finite seeds."""
    stats = lambda g, k, fn: (lambda a: float(fn(a)) if a.size else None)(  # noqa: E731
        np.array([r[k] for r in g if r[k] is not None], float))
    return tables.summarize(rows, ("task", "rule", "scheme"), extra={
        "acc": lambda g: stats(g, "test_accuracy", np.mean), "acc_std": lambda g: stats(g, "test_accuracy", np.std),
        "align": lambda g: stats(g, "align", np.mean), "align_std": lambda g: stats(g, "align", np.std)})


COLUMNS = ("task", "rule", "scheme", ("test acc", lambda s: tables.COLUMNS["acc"][1](s)),
           ("angle to BP, hidden layers (°)", lambda s: "—" if s["align"] is None else f"{s['align']:.1f} ± "
                                                             f"{s['align_std']:.1f}"), "diverged")


@cli.guarded("feedback_schemes.py")
def main(argv=None):
    args = parser().parse_args(argv)
    if args.quick:
        cli.apply_defaults(args, QUICK)
    cli.check_known(args.tasks, TASKS, "task")
    for r in args.rules:
        if fj.rules.get(r).feedback_shapes is None:
            raise InputError(f"rule {r!r} uses no feedback; pick rules with feedback (fa, dfa)")
    cli.check_known(args.schemes, SCHEMES, "feedback scheme")
    cli.check_run_sizes(args, ("depth", "width", "seeds", "steps", "batch_size", "eval_every"))
    tasks = {t: fj.data.digits() if t == "digits" else fj.data.parity(args.parity_n, args.parity_k) for t in args.tasks}
    models = {t: fj.mlp([task.n_in] + [args.width] * args.depth + [task.n_out], activation=args.activation)
              for t, task in tasks.items()}
    sweep_kw = {"seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size, "optimizer": args.optimizer,
                "lr": args.lr, "eval_every": args.eval_every, "diagnostics": True}
    Study.plan(({"model": models[t], "task": tasks[t], "rule": r, "feedback": feedback_of(scheme)}
                for t in tasks for r in args.rules for scheme in args.schemes),
               **sweep_kw)  # every cell checked before --out opens
    study = Study.from_args(args, "feedback-schemes",
                            {**vars(args), "tasks_resolved": {t: task.name for t, task in tasks.items()}})
    for t, task in tasks.items():
        for rule in args.rules:
            for scheme in args.schemes:
                res = study.sweep({"task": t, "rule": rule, "scheme": scheme}, models[t], task, rule=rule,
                                  desc=f"{t} {rule} {scheme}", feedback=feedback_of(scheme), **sweep_kw)
                angles = alignment(res)
                for r in study.rows[-len(res.seeds):]:
                    r["align"] = angles[r["seed"]]
                print(f"{t} {rule} {scheme}: acc {np.nanmean(res.final_test_acc):.3f}, "
                      f"angle {np.nanmean([a for a in angles.values() if a is not None] or [np.nan]):.1f}")

    def write(s):
        rows = by_scheme(s.rows)
        for t, task in tasks.items():
            plots.grouped_bars([r for r in rows if r["task"] == t], s.out / f"schemes_{t}.png", "scheme", "rule",
                               [("acc", "acc_std", "final test accuracy"),
                                ("align", "align_std", "angle to BP gradient (°)")], title=task.name)
        rundir.write_text(s.out / "schemes.md", tables.table(rows, COLUMNS) + "\n")
        return {"by_scheme": rows}

    study.finish(write)
    print((study.out / "schemes.md").read_text().rstrip())
    print(study.time_report())
    print(f"wrote {study.out}/config.json, metrics.jsonl, summary.json, schemes.md, "
          + ", ".join(f"schemes_{t}.png" for t in tasks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
