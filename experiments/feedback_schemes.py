"""FA and DFA under each named feedback scheme, side by side: final accuracy and alignment with BP.

    python experiments/feedback_schemes.py           # digits and 3-sparse parity, 4 seeds per scheme
    python experiments/feedback_schemes.py --quick   # tiny sizes

Schemes are ``fj.init_feedback(..., scheme=)`` presets (``default`` = the library's default
uniform fan-in draw). Every (task, rule, scheme) is one vmapped sweep with diagnostics on.
Writes <out>/config.json, metrics.jsonl (rows carry ``task`` and ``scheme``), summary.json,
schemes_<task>.png and schemes.md (the table), and prints the table.
"""

import sys

import numpy as np

import fa_jax as fj
from fa_jax.runs import cli
from fa_jax.runs import rundir

TASKS = ("digits", "parity")
SCHEMES = ("default", *fj.FEEDBACK_SCHEMES)
QUICK = {"seeds": 2, "steps": 200, "width": 32, "eval_every": 100, "parity_n": 8, "parity_k": 2}


def parser():
    p = cli.ArgParser(prog="feedback_schemes.py", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=cli.csv(), default=list(TASKS), help=f"from {', '.join(TASKS)}")
    p.add_argument("--rules", type=cli.csv(), default=["fa", "dfa"])
    p.add_argument("--schemes", type=cli.csv(), default=list(SCHEMES), help=f"from {', '.join(SCHEMES)}")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--activation", default="tanh")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", default="adam",
                   help="adam normalises update scale, so schemes that differ only in scale tie; try sgd")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--parity-n", type=int, default=16)
    p.add_argument("--parity-k", type=int, default=3)
    p.add_argument("--out", default=None, help="run directory (default runs/feedback-schemes-<time>)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    cli.add_run_flags(p)
    return p


def summarize(task, rule, scheme, res) -> dict:
    """One table row: accuracy and final alignment (mean over hidden layers) over seeds."""
    ok = ~res.diverged
    acc = res.final_test_acc[ok]
    align = res.diagnostics["grad_alignment_deg"][:, -1, :-1]  # hidden layers; the output layer is exact
    with np.errstate(all="ignore"):
        per_seed = np.nanmean(align, axis=1)[ok]
    f = lambda a, fn: float(fn(a)) if a.size else None
    return {"task": task, "rule": rule, "scheme": scheme, "seeds": len(res.seeds), "diverged": int((~ok).sum()),
            "acc": f(acc, np.mean), "acc_std": f(acc, np.std),
            "align": f(per_seed, np.nanmean), "align_std": f(per_seed, np.nanstd)}


def table(rows) -> str:
    fmt = lambda m, s, spec: "—" if m is None else f"{m:{spec}} ± {s:{spec}}"
    lines = ["| task | rule | scheme | test acc | angle to BP, hidden layers (°) | diverged |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['rule']} | {r['scheme']} | {fmt(r['acc'], r['acc_std'], '.3f')} "
                     f"| {fmt(r['align'], r['align_std'], '.1f')} | {r['diverged']}/{r['seeds']} |")
    return "\n".join(lines)


@cli.guarded("feedback_schemes.py")
def main(argv=None):
    args = parser().parse_args(argv)
    if args.quick:
        cli.apply_defaults(args, parser(), QUICK)
    try:
        cli.check_known(args.tasks, TASKS, "task")
        for r in args.rules:
            if fj.rules.get(r).feedback_shapes is None:
                raise ValueError(f"rule {r!r} uses no feedback; pick rules with feedback (fa, dfa)")
        cli.check_known(args.schemes, SCHEMES, "feedback scheme")
        cli.check_run_sizes(args, ("depth", "width", "seeds", "steps", "batch_size", "eval_every"))
        fj.optimizer(args.optimizer, args.lr)
        tasks = {t: fj.data.digits() if t == "digits" else fj.data.parity(args.parity_n, args.parity_k)
                 for t in args.tasks}
        fj.memory.check_all(({"model": fj.mlp([t.n_in] + [args.width] * args.depth + [t.n_out]), "task": t, "rule": r}
                             for t in tasks.values() for r in args.rules), seeds=args.seeds,
                            batch_size=args.batch_size, optimizer=args.optimizer, steps=args.steps,
                            eval_every=args.eval_every)
        resume = cli.checkpoint_kw(args)
        out = rundir.prepare(args.out or rundir.default_dir("feedback-schemes"))
        rundir.start(out, resume["resume"])  # refuses to overwrite a run with checkpoints
    except ValueError as err:
        cli.fail("feedback_schemes.py", err)

    if not resume["resume"]:
        rundir.write_config(out, {"job": "feedback_schemes", **vars(args), "out": str(out),
                                  "tasks_resolved": {t: task.name for t, task in tasks.items()}})
    rows, results_rows = [], []
    for t, task in tasks.items():
        model = fj.mlp([task.n_in] + [args.width] * args.depth + [task.n_out], activation=args.activation)
        for rule in args.rules:
            for scheme in args.schemes:
                fb = {} if scheme == "default" else {"scheme": scheme}
                res = fj.sweep(model, task, rule=rule, seeds=args.seeds, steps=args.steps,
                               batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                               eval_every=args.eval_every, feedback=fb,
                               diagnostics=True, progress=not args.no_progress, desc=f"{t} {rule} {scheme}",
                               **rundir.checkpointing(out, f"{t}-{rule}-{scheme}", resume["checkpoint_every"],
                                                      resume["checkpoints"], resume["keep_checkpoints"]))
                tag = {"task": t, "scheme": scheme}
                rundir.append_jsonl(out / "metrics.jsonl", [{**tag, **m} for m in res.metric_rows()])
                results_rows += [{**tag, **r} for r in res.rows()]
                rows.append(summarize(t, rule, scheme, res))
                print(f"{t} {rule} {scheme}: acc {rows[-1]['acc']}, angle {rows[-1]['align']}")
        fj.plots.grouped_bars([r for r in rows if r["task"] == t], out / f"schemes_{t}.png", "scheme", "rule",
                              [("acc", "acc_std", "final test accuracy"),
                               ("align", "align_std", "angle to BP gradient (°)")], title=task.name)
    text = table(rows)
    (out / "schemes.md").write_text(text + "\n")
    rundir.write_json(out / "summary.json", {"results": results_rows, "by_scheme": rows})
    print(text)
    print(f"wrote {out}/config.json, metrics.jsonl, summary.json, schemes.md, "
          + ", ".join(f"schemes_{t}.png" for t in tasks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
