"""BP, FA and DFA through convolutional nets (and a dense control), S seeds each, on an image dataset.

    python experiments/cnn_rules.py                      # embedded 8x8 digits, 4 models x 3 rules x 3 seeds (CPU)
    python experiments/cnn_rules.py --quick              # tiny nets, few steps (a smoke test; the tests use it)
    python experiments/cnn_rules.py --dataset mnist5k    # 5000 real 28x28 MNIST digits, offline ('.[mnist5k]')
    python experiments/cnn_rules.py --preset cifar10-gpu # CIFAR-10 (tfds), full-width nets, one GPU

Writes <out>/config.json, metrics.jsonl, summary.json, curves.png and prints a table
(model | params | rule | test accuracy mean ± std over seeds).
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.models import residual
from fa_jax.models.contract import n_params
from fa_jax.runs import cli, rundir, tables
from fa_jax.runs.study import Study
from fa_jax.wrap import resolve as flax_resolve

PRESETS = {
    # One GPU (not run on this project's CPU-only machine): full-width nets, flips + 4-px crops.
    "cifar10-gpu": {"dataset": "cifar10", "seeds": 4, "steps": 20000, "batch_size": 128, "eval_every": 1000,
                    "width": 1.0, "resnet_width": 16, "mlp_hidden": [1024, 512], "augment": ["flip", "crop"],
                    "crop": 4, "lr": 1e-3},
}
QUICK = {"seeds": 2, "steps": 40, "eval_every": 20, "width": 0.125, "resnet_depth": 8, "resnet_width": 2,
         "mlp_hidden": [16], "batch_size": 16}
AUGMENTS = ("flip", "crop")
MAX_GROUPS = 8  # --resnet-groups' default: the largest divisor of --resnet-width up to this


def parser():
    p = cli.ArgParser(prog="cnn_rules.py", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits",
                   help=f"one of {', '.join(fj.data.IMAGE_DATASETS)}: digits (embedded), mnist5k (offline, the "
                        "mnist5k extra), the others through tfds")
    p.add_argument("--models", type=cli.csv(), default=["lecture_cnn", "allconv", "resnet20", "mlp"],
                   help=f"comma-separated, from {', '.join(fj.cnn.MODELS)}, or a Flax model by import path "
                        "package.module:Name (wrapped with fj.from_flax)")
    p.add_argument("--rules", type=cli.rule_list(), default=["bp", "fa", "dfa"])
    cli.add_training_flags(p, seeds=3, steps=600, batch_size=32, eval_every=50)
    p.add_argument("--width", type=float, default=0.5, help="channel multiplier of lecture_cnn and allconv")
    p.add_argument("--padding", default="SAME", help="lecture_cnn conv padding (VALID = the lecture's MNIST net)")
    p.add_argument("--resnet-depth", type=int, default=20)
    p.add_argument("--resnet-width", type=int, default=4,
                   help="channels of the first resnet stage (paper: 16; 4 keeps it near the other nets' ~17k params)")
    p.add_argument("--resnet-norm", default="batch",
                   help="resnet20's normalization: batch (batch norm, the paper's), layer, instance, group "
                        "(per example, no running statistics) or none (SkipInit gains)")
    p.add_argument("--resnet-groups", type=int, default=None,
                   help="groups of --resnet-norm group, a divisor of --resnet-width (default: the largest "
                        f"divisor of the width up to {MAX_GROUPS})")
    p.add_argument("--mlp-hidden", type=cli.csv(int, unique=False), default=[128, 128], help="hidden widths of the dense control")
    p.add_argument("--augment", type=cli.csv(empty=True), default=[], help=f"comma-separated from {', '.join(AUGMENTS)}")
    p.add_argument("--crop", type=int, default=1, help="max shift in pixels for --augment crop")
    p.add_argument("--limit", type=int, default=None, help="keep the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="keep the first N test images")
    p.add_argument("--data-dir", default=None, help="tfds data_dir (default ~/tensorflow_datasets)")
    cli.add_feedback_flags(p)
    p.add_argument("--preset", default=None, help=f"one of {', '.join(PRESETS)} (explicit flags still win)")
    p.add_argument("--quick", action="store_true", help="tiny nets and few steps for a smoke test")
    p.add_argument("--diagnostics", action="store_true",
                   help="record per-layer gradient alignment with BP (alignment.md, alignment tables printed)")
    cli.add_run_flags(p, "cnn_rules")
    cli.add_data_parallel_flag(p)
    return p



def build(args):
    """(task, {name: model}) from parsed args; every check runs here, before anything compiles."""
    for r in args.rules:
        fj.rules.get(r)
    for a in args.augment:
        if a not in AUGMENTS:
            raise InputError(f"unknown augmentation {a!r}; known: {', '.join(AUGMENTS)}")
    cli.check_run_sizes(args)
    cli.check_data_parallel(args)  # flag-worded, so before Study.plan's own batch_size check
    if args.resnet_norm not in residual.NORMS:
        raise InputError(f"unknown --resnet-norm {args.resnet_norm!r}; known: {', '.join(residual.NORMS)}")
    if args.resnet_groups is not None and args.resnet_groups < 1:
        raise InputError(f"--resnet-groups must be a positive int, got {args.resnet_groups}")
    args.resnet_groups = resnet_groups(args)  # what config.json records
    if args.resnet_norm == "group" and "resnet20" in args.models and args.resnet_width % args.resnet_groups:
        w = args.resnet_width
        raise InputError(f"--resnet-groups {args.resnet_groups} does not divide --resnet-width {w}{preset_of(args)}; "
                         f"use a divisor of {w}: {', '.join(str(d) for d in range(1, w + 1) if w % d == 0)}")
    if not args.width > 0:
        raise InputError(f"--width must be > 0, got {args.width}")
    fj.optimizer(args.optimizer, args.lr)  # a typo answers before the dataset loads
    feedback = cli.feedback_options(args)
    aug = fj.data.Augment(flip="flip" in args.augment, crop=args.crop if "crop" in args.augment else 0)
    kw = {"lecture_cnn": {"width": args.width, "padding": args.padding}, "allconv": {"width": args.width},
          "resnet20": {"depth": args.resnet_depth, "width": args.resnet_width, "norm": args.resnet_norm,
                       "groups": args.resnet_groups},
          "mlp": {"hidden": tuple(args.mlp_hidden)}}
    cli.check_known([m for m in args.models if not flax_resolve.is_spec(m)], sorted(fj.cnn.MODELS), "model")
    task = fj.data.images(args.dataset, augment=aug, data_dir=args.data_dir, limit=args.limit,
                          test_limit=args.test_limit)
    models = {m: wrapped(m, task) if flax_resolve.is_spec(m) else fj.cnn.get(m, task.input_shape, task.n_out, **kw[m])
              for m in args.models}
    if args.diagnostics and any(m.stateful for m in models.values()):
        raise InputError("--diagnostics does not support batch norm yet; add --resnet-norm none (or layer, "
                         "instance, group) or leave resnet20 out of --models")
    Study.plan(({"model": m, "task": task, "rule": r} for m in models.values() for r in args.rules),
               **sweep_kw(args, feedback))  # every cell checked as its sweep will be, before --out opens
    return task, models


def resnet_groups(args) -> int:
    """``--resnet-groups``, or by default the largest divisor of ``--resnet-width`` up to :data:`MAX_GROUPS`
    (a width below 1 gives 1: the width's own check refuses it)."""
    if args.resnet_groups is not None:
        return args.resnet_groups
    w = args.resnet_width
    return max([d for d in range(1, min(w, MAX_GROUPS) + 1) if w % d == 0], default=1)


def preset_of(args) -> str:
    """`` (--quick's width)`` or `` (--preset NAME's width)`` when a preset set ``--resnet-width``, else ``""``."""
    if "resnet_width" not in getattr(args, "_preset", ()):
        return ""
    return " (--quick's width)" if args.quick and "resnet_width" in QUICK else f" (--preset {args.preset}'s width)"


def sweep_kw(args, feedback) -> dict:
    """The :func:`fa_jax.sweep` arguments every cell shares (its model and rule aside)."""
    return {"seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "lr": args.lr, "feedback": feedback, "eval_every": args.eval_every, "diagnostics": args.diagnostics,
            "data_parallel": args.data_parallel}


def wrapped(spec, task):
    """The Flax model ``spec`` names (``package.module:Name``), wrapped for the task's images."""
    model = fj.from_flax(flax_resolve.load(spec, task.n_out, what="--models"), task.input_shape)
    if model.n_out != task.n_out:
        raise InputError(f"--models {spec}: the model has {model.n_out} outputs, task {task.name!r} has {task.n_out}")
    return model


def layers_of(model) -> list:
    """The config's record of a model's layers: each built-in layer, or a wrapped model's weighted calls."""
    if isinstance(model, fj.FlaxModel):
        return [[kind, "/".join(map(str, path))] for path, kind, *_ in model.calls]
    return [[type(x).__name__, repr(x)] for b in model.blocks for x in b]


def alignment_tables(metric_rows, models) -> str:
    """One table per model: final angle (degrees) between each layer's update and BP's."""
    parts = []
    for name in models:
        mine = [r for r in metric_rows if r["model"] == name]
        parts.append(f"### {name}: angle between the rule's weight update and BP's (last logged step)\n\n"
                     + tables.layer_table(mine, "grad_alignment_deg"))
    return "\n\n".join(parts) + "\n"


@cli.guarded("cnn_rules.py")
def main(argv=None):
    args = parser().parse_args(argv)
    if args.preset is not None and args.preset not in PRESETS:
        raise InputError(f"unknown preset {args.preset!r}; known: {', '.join(PRESETS)}")
    if args.quick:
        cli.apply_defaults(args, QUICK)
    if args.preset:
        cli.apply_defaults(args, PRESETS[args.preset])
    task, models = build(args)
    feedback = cli.feedback_options(args)
    study = Study.from_args(args, "cnn_rules", {
        **vars(args), "task": task.name, "input_shape": list(task.input_shape), "n_train": task.n_train,
        "layers": {n: layers_of(m) for n, m in models.items()}})

    print(f"{task.name} {task.input_shape}: {args.seeds} seeds x {args.steps} steps, models {', '.join(models)}, "
          f"rules {', '.join(args.rules)} -> {study.out}")
    for name, model in models.items():
        for rule in args.rules:
            study.sweep({"model": name, "rule": rule}, model, task, desc=f"{name}/{rule}", rule=rule,
                        **sweep_kw(args, feedback))
    sizes = {name: n_params(m) for name, m in models.items()}
    summary = study.finish(lambda s: write_outputs(s, task, sizes, args.diagnostics))
    print(tables.table(summary["by_model_rule"], ("model", "params", "rule", "acc", "min_acc", "diverged", "seconds")))
    if args.diagnostics:
        print((study.out / "alignment.md").read_text())
    print(study.compile_report())
    print(study.time_report())
    print(f"wrote {study.out}/config.json, metrics.jsonl, summary.json, curves.png")
    return 0


def write_outputs(study, task, sizes, diagnostics) -> dict:
    """``curves.png`` (a panel per model), with diagnostics ``alignment.md``; the summary's fields."""
    fj.plots.curves(study.metric_rows, study.out / "curves.png", title=task.name, panel="model")
    if diagnostics:
        rundir.write_text(study.out / "alignment.md", alignment_tables(study.metric_rows, sizes))
    by = tables.summarize(study.rows, ("model", "rule"), extra={"params": lambda g: sizes[g[0]["model"]]})
    return {"task": task.name, "by_model_rule": by}


if __name__ == "__main__":
    sys.exit(main())
