"""How aligned are FA's and DFA's updates with backprop, layer by layer, over training?

    python experiments/alignment.py              # digits (10-class) and 3-sparse parity, 3 hidden layers, 4 seeds
    python experiments/alignment.py --quick      # tiny sizes (seconds)

For each task, BP, FA and DFA are trained with diagnostics on (one vmapped run per rule);
<out>/<task>/ is a run directory (config.json, metrics.jsonl, summary.json, curves.png,
loss.png, alignment.png, signal_alignment.png, weight_alignment.png, grad_norms.png,
weight_norms.png, embedding.npz/.png). <out>/alignment.md holds the tables of final
per-layer alignment (mean ± std over seeds).
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import dataclasses
import sys

import fa_jax as fj
from fa_jax.analysis.representations import METHODS
from fa_jax.runs import cli, rundir, tables
from fa_jax.runs.study import Study, compare_rules

TASKS = ("digits", "parity")
QUICK = {"seeds": 2, "steps": 200, "width": 32, "eval_every": 50, "parity_n": 8, "parity_k": 2,
         "embed_method": "pca"}


def parser():
    p = cli.ArgParser(prog="alignment.py", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=cli.csv(), default=list(TASKS), help=f"comma-separated, from {', '.join(TASKS)}")
    p.add_argument("--rules", type=cli.rule_list(), default=["bp", "fa", "dfa"])
    p.add_argument("--depth", type=int, default=3, help="hidden layers (2-4 tell FA and DFA apart)")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--activation", default="tanh")
    cli.add_training_flags(p, seeds=4, steps=2000, batch_size=64, eval_every=100)
    p.add_argument("--parity-n", type=int, default=16)
    p.add_argument("--parity-k", type=int, default=3)
    p.add_argument("--feedback-scheme", default=None, help=f"one of {', '.join(fj.FEEDBACK_SCHEMES)}")
    p.add_argument("--embed-layer", type=int, default=None, help="hidden layer to map in 2-D (default: the last)")
    p.add_argument("--embed-method", default="tsne", help=f"one of {', '.join(METHODS)}")
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    cli.add_run_flags(p, "alignment")
    return p


def make_task(name, args):
    return fj.data.digits() if name == "digits" else fj.data.parity(args.parity_n, args.parity_k)


@cli.guarded("alignment.py")
def main(argv=None):
    args = parser().parse_args(argv)
    if args.quick:
        cli.apply_defaults(args, QUICK)
    cli.check_known(args.tasks, TASKS, "task")
    for r in args.rules:
        fj.rules.get(r)
    cli.check_run_sizes(args, ("depth", "width", "seeds", "steps", "batch_size", "eval_every"))
    feedback = {} if args.feedback_scheme is None else {"scheme": args.feedback_scheme}
    embed_layer = args.depth if args.embed_layer is None else args.embed_layer
    fj.representations.check_method(args.embed_method)
    tasks = {t: make_task(t, args) for t in args.tasks}
    models = {t: fj.mlp([task.n_in] + [args.width] * args.depth + [task.n_out], activation=args.activation)
              for t, task in tasks.items()}
    fj.representations.check_layer(next(iter(models.values())), embed_layer)
    sweep_kw = {"seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size, "optimizer": args.optimizer,
                "lr": args.lr, "feedback": feedback, "eval_every": args.eval_every, "diagnostics": True}
    Study.plan(({"model": models[t], "task": tasks[t], "rule": r} for t in tasks for r in args.rules),
               **sweep_kw)  # every cell checked before --out opens
    top = Study.from_args(args, "alignment")  # config.json of the whole run; alignment.md comes last

    md = [f"# Alignment with BP: {args.depth} hidden layers of {args.width} {args.activation}, "
          f"{args.seeds} seeds, {args.steps} steps\n"]
    for t, task in tasks.items():
        model = models[t]
        study = Study.start(top.out / t, {"job": "alignment", **vars(args), "out": str(top.out / t),
                                          "model": dataclasses.asdict(model), "feedback": feedback,
                                          "task": task.name},
                            resume=top.resume, checkpoint_every=top.checkpoint_every,
                            keep_checkpoints=top.keep_checkpoints, progress=top.progress, tensorboard=top.tensorboard)
        print(f"{task.name}: {args.seeds} seeds x {args.steps} steps, rules {', '.join(args.rules)} -> {study.out}")
        _, _, table = compare_rules(study, model, task, args.rules, embed_layer=embed_layer,
                                    embed_method=args.embed_method, **sweep_kw)
        section = (f"## {task.name}\n\n{table}\n\nAngle between the rule's weight "
                   f"gradient and BP's at the last step:\n\n"
                   f"{tables.layer_table(study.metric_rows, 'grad_alignment_deg')}\n\n"
                   f"Weight alignment (FA: W_(l+1) vs B_(l+1); DFA: B_l vs the product of the forward "
                   f"weights above h_l):\n\n"
                   f"{tables.layer_table(study.metric_rows, 'weight_alignment_deg', hidden=True)}\n")
        print(section)
        print(study.time_report())
        md.append(section)
    rundir.write_text(top.out / "alignment.md", "\n".join(md))  # last: the run is complete when it exists
    print(f"wrote {top.out}/alignment.md and one run directory per task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
