"""Flax (linen) models under BP and the FA/DFA-family rules, wrapped by fj.from_flax, S seeds each, on an image dataset.

    python experiments/flax_models.py                    # the bundled MNIST CNN and ResNet, 5 rules x 3 seeds, digits (CPU)
    python experiments/flax_models.py --quick            # tiny nets, few steps (a smoke test; the tests use it)
    python experiments/flax_models.py --model mypkg.nets:Net          # your own model (see --model)
    python experiments/flax_models.py --models resnet_blocks --rules dfa   # "macro" DFA: points at block outputs
    python experiments/flax_models.py --models mnist_cnn --diagnostics     # + per-layer alignment with BP

--models takes bundled example names (fa_jax.wrap.examples.EXAMPLES: mnist_cnn, resnet,
resnet_blocks) and import paths package.module:Name; --model SPEC is the same for one model.
A class named by import path is made with no arguments, or with n_out=<the task's classes> if
its constructor takes n_out (fa_jax.wrap.resolve.load); a module instance is used as is.

Writes <out>/config.json, metrics.jsonl, summary.json, curves.png (with --diagnostics also
alignment.md and alignment_<model>.png) and prints a table
(model | params | rule | test accuracy mean ± std over seeds | min | diverged | seconds).
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import re
import sys

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.models.contract import n_params
from fa_jax.runs import cli, plots, rundir, tables
from fa_jax.runs.study import Study
from fa_jax.wrap.examples import EXAMPLES
from fa_jax.wrap.resolve import is_spec
from fa_jax.wrap.resolve import load as load_model

QUICK = {"seeds": 2, "steps": 40, "eval_every": 20, "width": 0.125, "resnet_width": 2, "batch_size": 16}
COLUMNS = ("model", "params", "rule", "acc", "min_acc", "diverged", "seconds")


def parser():
    p = cli.ArgParser(prog="flax_models.py", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits",
                   help=f"one of {', '.join(fj.data.IMAGE_DATASETS)}: digits (embedded), mnist5k (offline, the "
                        "mnist5k extra), the others through tfds")
    p.add_argument("--models", type=cli.csv(), default=["mnist_cnn", "resnet"],
                   help=f"comma-separated: bundled examples ({', '.join(EXAMPLES)}) or import paths package.module:Name")
    p.add_argument("--model", default=None, metavar="SPEC",
                   help="one model, overriding --models: an import path package.module:Name (a flax.linen or "
                        "flax.nnx Module class, made with no arguments or with n_out= if it takes it; or a module "
                        "instance) or a bundled example name")
    p.add_argument("--rules", type=cli.rule_list(), default=["bp", "fa", "dfa", "kp", "usf"],
                   help="comma-separated: bp and rules of the FA or DFA family")
    cli.add_training_flags(p, seeds=3, steps=600, batch_size=32, eval_every=50)
    p.add_argument("--width", type=float, default=0.5,
                   help="channel multiplier of mnist_cnn (1 = the flax example's 32/64/256)")
    p.add_argument("--resnet-width", type=int, default=8, help="channels of the ResNet stem and first stage")
    p.add_argument("--resnet-stages", type=cli.csv(int, unique=False), default=[1, 1, 1],
                   help="basic blocks per ResNet stage (channels double and the map halves at each stage)")
    p.add_argument("--limit", type=int, default=None, help="keep the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="keep the first N test images")
    p.add_argument("--data-dir", default=None, help="tfds data_dir (default ~/tensorflow_datasets)")
    cli.add_feedback_flags(p)
    p.add_argument("--quick", action="store_true", help="tiny nets and few steps for a smoke test")
    p.add_argument("--diagnostics", action="store_true",
                   help="record per-layer gradient alignment with BP (alignment.md, alignment_<model>.png); "
                        "skipped, with a note, for models with batch norm")
    cli.add_run_flags(p, "flax_models")
    cli.add_data_parallel_flag(p)
    return p


def model_names(args) -> list[str]:
    """The models of the run: ``--model`` if given (it overrides ``--models``), else ``--models``."""
    return list(args.models) if args.model is None else [args.model]


def make_module(name, args, n_out):
    """The linen (or NNX) module for ``name``: a bundled example with this run's sizes, or an import path."""
    if is_spec(name):
        return load_model(name, n_out, what="model")
    cli.check_known([name], list(EXAMPLES), "model")
    if name == "mnist_cnn":
        return EXAMPLES[name](n_out, width=args.width)
    return EXAMPLES[name](n_out, width=args.resnet_width, stage_sizes=tuple(args.resnet_stages))


def file_name(label: str) -> str:
    """``label`` as a file or folder name (import paths keep letters, digits, ``.``, ``-``, ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def build(args):
    """(task, {name: wrapped model}) from parsed args; every check runs here, before anything compiles."""
    names = model_names(args)
    for r in args.rules:
        fj.rules.get(r)
    cli.check_run_sizes(args)
    cli.check_data_parallel(args)  # flag-worded, so before Study.plan's own batch_size check
    if not args.width > 0:
        raise InputError(f"--width must be > 0, got {args.width}")
    if args.resnet_width < 1:
        raise InputError(f"--resnet-width must be >= 1, got {args.resnet_width}")
    if any(n < 1 for n in args.resnet_stages):
        raise InputError(f"--resnet-stages must be >= 1 each, got {','.join(map(str, args.resnet_stages))}")
    fj.optimizer(args.optimizer, args.lr)  # a typo answers before the dataset loads
    feedback = cli.feedback_options(args)
    for name in names:  # unknown names first: nothing loads for a typo
        if not is_spec(name):
            cli.check_known([name], list(EXAMPLES), "model")
    task = fj.data.images(args.dataset, data_dir=args.data_dir, limit=args.limit, test_limit=args.test_limit)
    models = {}
    for name in names:
        module = make_module(name, args, task.n_out)
        try:
            model = fj.from_flax(module, task.input_shape)
        except InputError as err:
            raise InputError(f"model {name!r}: {err}") from None
        if model.n_out != task.n_out:
            raise InputError(f"model {name!r} returns {model.n_out} logits; {task.name} has {task.n_out} classes")
        models[name] = model
    Study.plan(({"model": m, "task": task, "rule": r, "diagnostics": diagnosed(args, m)}
                for m in models.values() for r in args.rules),
               **sweep_kw(args, feedback))  # every cell checked as its sweep will be, before --out opens
    return task, models


def diagnosed(args, model) -> bool:
    """Whether the sweeps of ``model`` record diagnostics: with --diagnostics, unless it has batch norm."""
    return args.diagnostics and not model.stateful


def sweep_kw(args, feedback) -> dict:
    """The :func:`fa_jax.sweep` arguments every cell shares (its model, rule and diagnostics aside)."""
    return {"seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "lr": args.lr, "feedback": feedback, "eval_every": args.eval_every, "data_parallel": args.data_parallel}


def skipped_note(skipped) -> str:
    return (f"diagnostics skipped for {', '.join(skipped)}: batch norm (fa_jax's diagnostics do not support "
            f"stateful models yet)")


def alignment_tables(metric_rows, names, skipped) -> str:
    """Per diagnosed model: the final angle (degrees) between each layer's update and BP's, and
    the FA family's weight alignment; a note naming the models left out."""
    parts = []
    for name in names:
        if name in skipped:
            continue
        mine = [r for r in metric_rows if r["model"] == name]
        parts.append(f"### {name}: angle between the rule's weight update and BP's (last logged step)\n\n"
                     + tables.layer_table(mine, "grad_alignment_deg"))
        if any(r.get("weight_alignment_deg") is not None for r in mine):
            parts.append(f"### {name}: angle between W_(l+1) and the feedback B_(l+1) that carries the signal "
                         f"to h_l (FA family)\n\n" + tables.layer_table(mine, "weight_alignment_deg", hidden=True))
    if skipped:
        parts.append(skipped_note(skipped) + ".")
    return "\n\n".join(parts) + "\n"


@cli.guarded("flax_models.py")
def main(argv=None):
    args = parser().parse_args(argv)
    if args.quick:
        cli.apply_defaults(args, QUICK)
    task, models = build(args)
    skipped = [n for n, m in models.items() if args.diagnostics and m.stateful]
    feedback = cli.feedback_options(args)
    study = Study.from_args(args, "flax_models", {
        **vars(args), "task": task.name, "input_shape": list(task.input_shape), "n_train": task.n_train,
        "wrapped": {n: repr(m) for n, m in models.items()},
        "dfa_points": {n: [[p, list(s)] for p, s in m.points] for n, m in models.items()}})

    print(f"{task.name} {task.input_shape}: {args.seeds} seeds x {args.steps} steps, models {', '.join(models)}, "
          f"rules {', '.join(args.rules)} -> {study.out}")
    if skipped:
        print(f"note: {skipped_note(skipped)}")
    for name, model in models.items():
        for rule in args.rules:
            study.sweep({"model": name, "rule": rule}, model, task, name=f"{file_name(name)}-{file_name(rule)}",
                        desc=f"{name}/{rule}", rule=rule, diagnostics=diagnosed(args, model),
                        **sweep_kw(args, feedback))
    sizes = {name: n_params(m) for name, m in models.items()}
    summary = study.finish(lambda s: write_outputs(s, task, sizes, args.diagnostics, skipped))
    print(tables.table(summary["by_model_rule"], COLUMNS))
    if args.diagnostics:
        print((study.out / "alignment.md").read_text())
    print(study.time_report())
    extra = ", alignment.md, alignment_<model>.png" if args.diagnostics else ""
    print(f"wrote {study.out}/config.json, metrics.jsonl, summary.json, curves.png{extra}")
    return 0


def write_outputs(study, task, sizes, diagnostics, skipped) -> dict:
    """``curves.png`` (a panel per model); with diagnostics ``alignment.md`` and one
    ``alignment_<model>.png`` per diagnosed model; the summary's fields."""
    rows = study.metric_rows
    fj.plots.curves(rows, study.out / "curves.png", title=task.name, panel="model")
    if diagnostics:
        rundir.write_text(study.out / "alignment.md", alignment_tables(rows, sizes, skipped))
        for name in sizes:
            if name not in skipped:
                plots.layer_curves([r for r in rows if r["model"] == name],
                                   study.out / f"alignment_{file_name(name)}.png", title=f"{task.name}, {name}")
    by = tables.summarize(study.rows, ("model", "rule"), extra={"params": lambda g: sizes[g[0]["model"]]})
    return {"task": task.name, "by_model_rule": by, "diagnostics_skipped": skipped}


if __name__ == "__main__":
    sys.exit(main())
