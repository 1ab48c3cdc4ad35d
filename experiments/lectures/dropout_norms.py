"""Dropout variants and normalization layers (the lectures on dropout and normalization) under BP and DFA on digits.

    python experiments/lectures/dropout_norms.py

scikit-learn's 8x8 digits: the first --n-train images of the training split train, the rest
of it is the validation set (the curves and the gap), the 449 test images are only scored at
the end. Three groups, every rule of --rules, --seeds seeds vmapped per cell, Adam (lr --lr,
batch 32), --steps steps:

- MLP 64-W-W-10 (``fj.norm_mlp``, --width) with no dropout and each kind of
  ``fa_jax.models.dropout.KINDS`` at rate --p in both hidden layers;
- the digits conv net (``fj.cnn.lecture_cnn((8, 8, 1), 10, width=--cnn-width)``) with no
  dropout and each kind on its fc layer;
- the same conv net, no dropout, with a norm layer after each conv (before the pooling):
  batchnorm, layernorm (over H, W, C), instancenorm, groupnorm(--groups).

Per cell: final test accuracy and the generalization gap (accuracy on the training images
minus on the validation images, both in evaluation mode: dropout off, batch norm's running
statistics), mean and std over seeds. Writes dropout_norms.png and summary.json.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import jax
import matplotlib

from fa_jax.errors import InputError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fa_jax as fj  # noqa: E402
from fa_jax.models.dropout import KINDS  # noqa: E402
from fa_jax.runs import (
    cli,  # noqa: E402
    lecture,  # noqa: E402
)
from fa_jax.runs.study import Study  # noqa: E402
from fa_jax.training.state import apply_model  # noqa: E402

QUICK = {"rules": ["dfa"], "dropouts": ["standout"], "norms": ["group"], "seeds": 1, "steps": 20, "width": 16,
         "cnn_width": 0.125, "groups": 2, "n_train": 200}
DROPOUTS = ("none",) + KINDS
NORMS = ("batch", "layer", "instance", "group")


def parser():
    p = lecture.parser("dropout_norms.py", __doc__, QUICK)
    p.add_argument("--rules", type=cli.rule_list(), default=["bp", "dfa"])
    p.add_argument("--dropouts", type=cli.csv(empty=True), default=list(DROPOUTS),
                   help=f"of {', '.join(DROPOUTS)} ('': no dropout groups)")
    p.add_argument("--norms", type=cli.csv(empty=True), default=list(NORMS),
                   help=f"of {', '.join(NORMS)} ('': no norm group)")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-train", type=int, default=500, help="training images (the rest of the split validates)")
    p.add_argument("--width", type=int, default=256, help="the MLP's hidden widths")
    p.add_argument("--cnn-width", type=float, default=0.5, help="scales the conv net's 32, 64, 200 channels/units")
    p.add_argument("--p", type=float, default=0.5, help="the rate of every dropout kind")
    p.add_argument("--groups", type=int, default=8, help="groupnorm's groups (must divide both convs' channels)")
    return p


def mlp_of(args, dropout):
    return fj.norm_mlp([64, args.width, args.width, 10], dropout=dropout, p=args.p)


def cnn_of(args, dropout):
    return fj.cnn.lecture_cnn((8, 8, 1), 10, width=args.cnn_width, dropout=dropout, p=args.p)


def norm_cnn_of(args, norm):
    """lecture_cnn's layers with a ``norm`` layer after each conv, before its pooling."""
    c1, c2, f = (max(1, round(c * args.cnn_width)) for c in (32, 64, 200))
    spec = {"batch": "batchnorm", "layer": "layernorm", "instance": "instancenorm"}.get(norm, f"groupnorm({args.groups})")
    return fj.cnn.sequential((8, 8, 1), [f"conv({c1},5)", spec, "maxpool(3)", "relu", f"conv({c2},5)", spec,
                                         "maxpool(2)", "relu", "flatten", f"dense({f})", "relu", "dense(10)"],
                             name=f"lecture_cnn-{norm}")


def cells(args):
    """``(group, variant, rule) -> (model, images?)`` for every cell, in plotting order."""
    out = {}
    for rule in args.rules:
        for d in args.dropouts:
            out["mlp", d, rule] = (mlp_of(args, d), False)
            out["cnn", d, rule] = (cnn_of(args, d), True)
        for n in args.norms:
            out["cnn-norm", n, rule] = (norm_cnn_of(args, n), True)
    return out


def check(args):
    lecture.positive(args, "seeds", "steps", "lr", "n_train", "width", "cnn_width", "groups")
    for r in args.rules:
        fj.rules.get(r)
    fj.dropout.check_rate(args.p)
    for flag, given, accepted in (("--dropouts", args.dropouts, DROPOUTS), ("--norms", args.norms, NORMS)):
        for v in given:
            if v not in accepted:
                raise InputError(f"{flag}: unknown {v!r}; accepted: {', '.join(accepted)}")
    if not args.dropouts and not args.norms:
        raise InputError("--dropouts and --norms are both empty: nothing to train")
    n = fj.data.digits().x_train.shape[0]
    if args.n_train >= n:
        raise InputError(f"--n-train must be below the {n} training images (the rest validate), got {args.n_train}")
    models = cells(args)  # one-line errors for the widths, the rate and groups not dividing the channels
    tasks = {images: task for images, (task, _) in data(args).items()}
    Study.plan(({"rule": r, "model": m, "task": tasks[images]} for (_, _, r), (m, images) in models.items()),
               **sweep_kw(args))  # every cell checked as train_cells will sweep it, before --out opens


def _every(args):
    return max(1, args.steps // 40)


def sweep_kw(args) -> dict:
    """The :func:`fa_jax.sweep` arguments every cell shares (its model, task and rule aside)."""
    return {"seeds": args.seeds, "steps": args.steps, "batch_size": 32, "optimizer": "adam", "lr": args.lr,
            "eval_every": _every(args)}


def data(args):
    """``{images?: (train_task, (x_test, y_test))}``: digits flat (the MLP) and as 8x8 images, :func:`split`."""
    return {False: split(fj.data.digits(), args.n_train), True: split(fj.data.images("digits"), args.n_train)}


def split(task, n_train):
    """``(train_task, (x_test, y_test))``: the task trained on its first ``n_train`` training
    examples, validated on the rest of them (its test set), and its own test set kept aside."""
    tr = task.replace(x_test=task.x_train[n_train:], y_test=task.y_train[n_train:],
                      x_train=task.x_train[:n_train], y_train=task.y_train[:n_train])
    return tr, (task.x_test, task.y_test)


def accuracy(model, rule, res, x, y):
    """(S,) evaluation-mode accuracy of every seed's final params on (x, y); NaN where it diverged."""
    def one(state):
        logits, _ = apply_model(model, state, state.params, x, rule=rule)
        return fj.losses.accuracy(logits, y).mean()
    return np.where(res.diverged, np.nan, np.asarray(jax.jit(jax.vmap(one))(res.state)))


def _stats(v):
    v = np.asarray(v, float)
    ok = v[np.isfinite(v)]
    return {"mean": float(ok.mean()) if ok.size else None, "std": float(ok.std()) if ok.size else None,
            "per_seed": [None if not np.isfinite(a) else float(a) for a in v]}


def train_cells(args, study):
    tasks = data(args)
    out = {}
    for (group, variant, rule), (model, images) in cells(args).items():
        task, (x_te, y_te) = tasks[images]
        res = study.sweep({"sweep": f"{group}-{variant}-{rule}"}, model, task, rule=rule, progress=False,
                          **sweep_kw(args))
        train = accuracy(model, rule, res, task.x_train, task.y_train)
        val = accuracy(model, rule, res, task.x_test, task.y_test)
        out[group, variant, rule] = {
            "test_acc": _stats(accuracy(model, rule, res, x_te, y_te)), "train_acc": _stats(train),
            "val_acc": _stats(val), "gap": _stats(train - val), "diverged": int(res.diverged.sum()),
            "val_curve": np.nanmean(np.where(res.diverged_mask, np.nan, res.test_acc), 0).tolist(),
            "eval_steps": res.eval_steps.tolist()}
    return out


TITLES = {"mlp": "MLP 64-{w}-{w}-10: dropout", "cnn": "conv net (x{cw:g}): dropout on fc", "cnn-norm": "conv net: norm after each conv"}


def plot(args, res, path):
    groups = list(TITLES)
    fig, axes = plt.subplots(2, 3, figsize=(15, 7), dpi=100, sharey="row")
    width = 0.8 / len(args.rules)
    for j, g in enumerate(groups):
        variants = list(dict.fromkeys(v for (gg, v, _) in res if gg == g))
        x = np.arange(len(variants))
        for k, rule in enumerate(args.rules):
            for row, key in enumerate(("test_acc", "gap")):
                m = [res[g, v, rule][key]["mean"] for v in variants]
                s = [res[g, v, rule][key]["std"] for v in variants]
                m, s = (np.array([np.nan if a is None else a for a in z]) for z in (m, s))
                axes[row, j].bar(x + (k - (len(args.rules) - 1) / 2) * width, m, width, yerr=s, capsize=3,
                                 label=rule, color=f"C{k}")
            if g == "cnn-norm" and ("cnn", "none", rule) in res:  # the same net without a norm
                for row, key in enumerate(("test_acc", "gap")):
                    axes[row, j].axhline(res["cnn", "none", rule][key]["mean"], color=f"C{k}", ls="--", lw=1,
                                         label=f"{rule}, no norm")
        for row in range(2):
            axes[row, j].set_xticks(x, variants)
            axes[row, j].grid(alpha=0.3, axis="y")
        axes[0, j].set_title(TITLES[g].format(w=args.width, cw=args.cnn_width))
    axes[0, 0].set_ylabel(f"test accuracy (mean ± std, {args.seeds} seeds)")
    axes[1, 0].set_ylabel("gap: train acc - validation acc")
    lo = np.nanmin([v["test_acc"]["mean"] or np.nan for v in res.values()])
    axes[0, 0].set_ylim(max(0.0, lo - 0.05), 1.0)
    axes[0, 0].legend(loc="upper left", ncol=len(args.rules), fontsize=8)
    if ("cnn", "none", args.rules[0]) in res and any(g == "cnn-norm" for g, _, _ in res):
        hl = [(h, lab) for h, lab in zip(*axes[0, 2].get_legend_handles_labels()) if lab.endswith("no norm")]
        axes[0, 2].legend(*zip(*hl), loc="upper right", fontsize=8)
    fig.suptitle(f"digits, {args.n_train} training images, Adam lr {args.lr:g}, {args.steps} steps, dropout p = {args.p:g}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(c):
    t, g = c["test_acc"]["mean"], c["gap"]["mean"]
    return "diverged" if t is None else f"{t:.3f} (gap {g:.3f})"


def verdict(args, res):
    parts = []
    for rule in args.rules:
        for g, base in (("mlp", "none"), ("cnn", "none"), ("cnn-norm", None)):
            vs = {v: c for (gg, v, r), c in res.items() if gg == g and r == rule}
            if not vs:  # a group left out by --dropouts '' or --norms ''
                continue
            best = max(vs, key=lambda v: -1 if vs[v]["test_acc"]["mean"] is None else vs[v]["test_acc"]["mean"])
            head = f"{rule} {g}: " + (f"none {_fmt(vs[base])}, " if base in vs else "")
            parts.append(head + f"best {best} {_fmt(vs[best])}")
    return f"digits test accuracy, mean of {args.seeds} seeds: " + "; ".join(parts)


def body(args, study):
    res = train_cells(args, study)
    plot(args, res, study.out / "dropout_norms.png")
    summary = {f"{g}/{v}/{r}": c for (g, v, r), c in res.items()}
    return {"cells": summary}, verdict(args, res)


def main(argv=None):
    return lecture.run_lecture("dropout_norms.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
