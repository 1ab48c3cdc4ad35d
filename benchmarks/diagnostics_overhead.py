"""Cost of ``diagnostics=True``: training time per step with and without, measured in one run.

    python benchmarks/diagnostics_overhead.py            # the default parity job's config
    python benchmarks/diagnostics_overhead.py --steps 600 --seeds 4

Each (rule, diagnostics) pair is compiled once, then run ``--repeats`` times; the best
run time (compile excluded) is reported as microseconds per step (all seeds together) and
the ratio with / without diagnostics.
"""

import sys

import jax

import fa_jax as fj
from fa_jax.runs import cli


def main(argv=None):
    p = cli.ArgParser(prog="diagnostics_overhead.py", description=__doc__.splitlines()[0])
    p.add_argument("--rules", type=cli.csv(), default=["bp", "fa", "dfa"])
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    try:
        for r in args.rules:
            fj.rules.get(r)
        task = fj.data.parity(args.n, args.k)
        model = fj.mlp([args.n] + [args.width] * args.depth + [1])
    except ValueError as err:
        cli.fail("diagnostics_overhead.py", err)
    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}; {task.name}, {model.sizes}, {args.seeds} seeds, "
          f"{args.steps} steps, diagnostics every {args.eval_every} steps")
    lines = ["| rule | µs/step without | µs/step with | ratio |", "|---|---|---|---|"]
    for rule in args.rules:
        best = {}
        for diag in (False, True):
            runs = [fj.sweep(model, task, rule=rule, seeds=args.seeds, steps=args.steps, eval_every=args.eval_every,
                             diagnostics=diag, progress=False).run_s for _ in range(args.repeats)]
            best[diag] = min(runs) / args.steps * 1e6
        lines.append(f"| {rule} | {best[False]:.1f} | {best[True]:.1f} | {best[True] / best[False]:.3f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
