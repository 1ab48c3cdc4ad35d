"""Regression dataset (the introductory deep-learning lectures): an MLP trained with BP and DFA, test RMSE.

    python experiments/lectures/regression.py                      # California housing, if cached
    python experiments/lectures/regression.py --dataset diabetes   # bundled with scikit-learn

California housing loads through scikit-learn only when it is already in scikit-learn's data
folder (never downloaded); otherwise a one-line error names the bundled ``diabetes``.
Inputs are z-scored and targets standardized with training-split statistics; the MSE is
minimized on the standardized target and the RMSE reported in the target's units.
Writes regression.png (test RMSE vs step) and summary.json with the verdict.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import jax.numpy as jnp
import numpy as np

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.runs import cli, lecture, plots
from fa_jax.runs.study import Study

QUICK = {"seeds": 1, "steps": 20, "width": 8}
DATASETS = ("california", "diabetes")


def parser():
    p = lecture.parser("regression.py", __doc__, QUICK)
    p.add_argument("--dataset", default="california", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--rules", type=cli.rule_list(), default=["bp", "dfa"])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights")
    return p


def load(name):
    """(x (n, d), y (n,)) float arrays; California only from scikit-learn's local cache."""
    from sklearn import datasets

    if name == "diabetes":
        return datasets.load_diabetes(return_X_y=True)
    try:
        return datasets.fetch_california_housing(return_X_y=True, download_if_missing=False)
    except OSError:
        raise InputError(f"California housing is not cached in {datasets.get_data_home()} (no download here); "
                         "use --dataset diabetes (bundled with scikit-learn)") from None


def check(args):
    if args.dataset not in DATASETS:
        raise InputError(f"unknown dataset {args.dataset!r}; known: {', '.join(DATASETS)}")
    lecture.positive(args, "seeds", "steps", "width", "lr")
    fj.regularize.check_tools(l2=args.l2)
    for r in args.rules:
        fj.rules.get(r)
    x, y = load(args.dataset)  # fails before anything compiles when California is not cached
    task = make_task(args.dataset, x, y)[0]
    Study.plan(({"rule": r} for r in args.rules), model=fj.mlp([x.shape[1], args.width, args.width, 1]), task=task,
               **sweep_kw(args))  # every sweep checked as body will run it, before --out opens


def sweep_kw(args) -> dict:
    """The :func:`fa_jax.sweep` arguments of every rule's sweep (its rule aside)."""
    return {"seeds": args.seeds, "steps": args.steps, "batch_size": 32, "lr": args.lr,
            "optimizer_hyper": {"l2": args.l2} if args.l2 else None, "eval_every": args.steps // 50 or 1}


def make_task(name, x, y):
    """``(task, test indices, training indices, y_mean, y_std)``: a fixed 80/20 split of ``(x, y)``, the
    targets standardized and the inputs z-scored with the training split's statistics."""
    perm = np.random.default_rng(0).permutation(len(x))
    n_test = len(x) // 5
    te, tr = perm[:n_test], perm[n_test:]
    y_mean, y_std = y[tr].mean(), y[tr].std()
    ys = ((y - y_mean) / y_std).astype(np.float32)
    task = fj.data.Task(x_test=jnp.asarray(x[te], jnp.float32), y_test=jnp.asarray(ys[te]),
                        x_train=jnp.asarray(x[tr], jnp.float32), y_train=jnp.asarray(ys[tr]),
                        name=name, n_in=x.shape[1], n_out=1, default_loss="mse")
    return fj.scaling.scale_task(task, "zscore"), te, tr, y_mean, y_std


def body(args, study):
    x, y = load(args.dataset)
    task, te, tr, y_mean, y_std = make_task(args.dataset, x, y)
    model = fj.mlp([x.shape[1], args.width, args.width, 1])
    rows, result = [], {}
    for rule in args.rules:
        res = study.sweep({"sweep": rule}, model, task, rule=rule, progress=False, **sweep_kw(args))
        rmse = np.sqrt(res.test_loss) * y_std
        result[rule] = {"final_rmse_mean": float(rmse[:, -1].mean()), "final_rmse_std": float(rmse[:, -1].std()),
                        "best_rmse_mean": float(rmse.min(1).mean())}
        rows += [{"rule": rule, "seed": s, "step": int(t), "test_rmse": float(rmse[i, j])}
                 for i, s in enumerate(res.seeds) for j, t in enumerate(res.eval_steps)]
    plots.curves(rows, study.out / "regression.png", "test_rmse", "test RMSE (target units)",
                 title=f"{args.dataset}: {len(tr)} train / {len(te)} test")
    baseline = float(np.sqrt(np.mean((y[te] - y_mean) ** 2)))
    verdict = f"{args.dataset} test RMSE after {args.steps} steps ({args.seeds} seeds): " + ", ".join(
        f"{r} {v['final_rmse_mean']:.3g} ± {v['final_rmse_std']:.2g} (at its best step {v['best_rmse_mean']:.3g})"
        for r, v in result.items()) + f"; predicting the training mean: {baseline:.3g}"
    return {"rmse": result, "mean_baseline_rmse": baseline, "n_train": len(tr), "n_test": len(te)}, verdict


def main(argv=None):
    return lecture.run_lecture("regression.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
