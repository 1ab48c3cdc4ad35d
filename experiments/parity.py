"""The main job: BP, FA and DFA on synthetic k-sparse parity, S seeds each, one vmapped run per rule.

    python experiments/parity.py                  # n=30, k=3, 8 seeds, ~1 min on 2 CPU cores
    python experiments/parity.py --quick          # n=10, k=2, seconds (used by the tests)
    python experiments/parity.py --resume runs/parity-...   # continue a killed run from its checkpoints

Writes <out>/config.json, metrics.jsonl, summary.json, curves.png and prints a table.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import dataclasses
import sys

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.runs import cli
from fa_jax.runs.study import Study, compare_rules


def parser():
    p = cli.ArgParser(prog="parity.py", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30, help="number of input bits")
    p.add_argument("--k", type=int, default=3, help="number of relevant bits")
    p.add_argument("--rules", type=cli.rule_list(), default=["bp", "fa", "dfa"], help="comma-separated rules")
    p.add_argument("--seeds", type=int, default=8, help="number of seeds (vmapped)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=256, help="hidden width")
    p.add_argument("--depth", type=int, default=2, help="number of hidden layers")
    p.add_argument("--activation", default="relu")
    p.add_argument("--init", default="he_uniform", help="weight init, e.g. he_uniform, uniform(10)")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--loss", default="bce")
    cli.add_feedback_flags(p)
    p.add_argument("--n-train", type=int, default=None, help="fixed training-set size (default: fresh samples)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test (n=10, k=2, 2 seeds)")
    p.add_argument("--diagnostics", action="store_true",
                   help="record per-layer alignment with BP and gradient/weight norms; plot them")
    cli.add_run_flags(p, "parity")
    cli.add_data_parallel_flag(p)
    return p


QUICK = {"n": 10, "k": 2, "seeds": 2, "steps": 400, "width": 64, "eval_every": 50}


@cli.guarded("parity.py")
def main(argv=None):
    args = parser().parse_args(argv)
    fj.sharding.maybe_initialize_distributed()  # no-op unless launched as several processes
    if args.quick:
        cli.apply_defaults(args, QUICK)
    if args.depth < 0:
        raise InputError(f"--depth must be >= 0, got {args.depth}")
    cli.check_run_sizes(args, ("width",), multiple=False)
    task = fj.data.parity(args.n, args.k, n_train=args.n_train, data_seed=args.data_seed)
    model = fj.mlp([args.n] + [args.width] * args.depth + [1], activation=args.activation, init=args.init)
    feedback = cli.feedback_options(args)
    cli.check_run_sizes(args)
    sweep_kw = {"seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size, "optimizer": args.optimizer,
                "lr": args.lr, "loss": args.loss, "feedback": feedback, "eval_every": args.eval_every,
                "diagnostics": args.diagnostics, "data_parallel": args.data_parallel}
    cli.check_data_parallel(args)
    Study.plan(({"model": model, "task": task, "rule": r} for r in args.rules), **sweep_kw)  # before --out opens
    study = Study.from_args(args, "parity", {**vars(args), "model": dataclasses.asdict(model), "feedback": feedback,
                                             "task": task.name})  # checks the run flags, opens --out
    print(f"{task.name}: {args.seeds} seeds x {args.steps} steps, rules {', '.join(args.rules)} -> {study.out}")
    results, _, table = compare_rules(study, model, task, args.rules, **sweep_kw)
    if not table:  # a non-zero process of a multi-host run: process 0 reports
        return 0
    print(table)
    for rule, res in results.items():
        print(f"{rule}: compile {res.compile_s:.1f} s (+ {res.init_compile_s:.1f} s the draws), run {res.run_s:.1f} s")
    print(study.time_report())
    figs = ", alignment.png, grad_norms.png, ..." if args.diagnostics else ""
    print(f"wrote {study.out}/config.json, metrics.jsonl, summary.json, curves.png, loss.png{figs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
