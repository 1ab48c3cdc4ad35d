"""Input normalization (the introductory deep-learning lectures): raw vs z-score vs ZCA inputs, steps to reach a loss.

    python experiments/lectures/normalization.py

Part 1, linear regression y = 3x + 2 + U(-0.1, 0.1), 30 samples with x in [0, --x-max]
(off-centre, as raw features usually are): full-batch GD on J = mean (w x + b - y)^2 from
(0, 0), each input scaling with its own best constant step 1 / lambda_max(Hessian), so only
the conditioning differs; in one dimension ZCA is the z-score. Part 2, scikit-learn's 8x8
digits with raw pixels (0..16) vs z-scored vs ZCA-whitened pixels (every scaler fitted on the
training split only), an MLP 64-W-10 trained by --rule with SGD + momentum 0.9 over a grid of
learning rates (--lrs, every rate x --seeds seeds in one vmapped sweep per scaling), each
scaling at its own best rate. Writes normalization.png and summary.json with the verdict
(the first step whose loss is below --reg-target / --digits-target).
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import jax
import jax.numpy as jnp
import matplotlib

from fa_jax.errors import InputError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fa_jax as fj  # noqa: E402
from fa_jax.data.digits import split as digits_split
from fa_jax.optim.gd_paths import gd_path, linear_data  # noqa: E402
from fa_jax.runs import (
    cli,
    lecture,  # noqa: E402
)

QUICK = {"reg_steps": 10, "steps": 20, "seeds": 1, "width": 8, "lrs": [0.01, 0.1]}
SCALINGS = ("raw", "zscore", "zca")


def parser():
    p = lecture.parser("normalization.py", __doc__, QUICK)
    p.add_argument("--x-max", type=float, default=10.0, help="regression inputs uniform in [0, x-max]")
    p.add_argument("--reg-steps", type=int, default=300)
    p.add_argument("--reg-target", type=float, default=0.01, help="regression loss to reach (noise floor 0.0033)")
    p.add_argument("--rule", default="bp")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--lrs", type=cli.csv(float), default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3],
                   help="SGD + momentum 0.9 learning rates tried for every scaling")
    p.add_argument("--digits-target", type=float, default=0.3, help="training cross-entropy to reach")
    p.add_argument("--zca-eps", type=float, default=0.1, help="ZCA epsilon (pixel variances are up to ~40)")
    return p


def check(args):
    lecture.positive(args, "x_max", "reg_steps", "reg_target", "seeds", "steps", "width", "digits_target",
                     "zca_eps")
    for lr in args.lrs:
        fj.optim.check_learning_rate(lr)
    fj.rules.get(args.rule)
    if args.reg_steps > 10**6:  # every step of the regression part is kept and plotted
        raise InputError(f"--reg-steps must be <= 1000000, got {args.reg_steps}")
    fj.memory.check_sweep(fj.mlp([64, args.width, 10]), fj.data.digits(), rule=args.rule,
                          seeds=len(args.lrs) * args.seeds, batch_size=32, optimizer="momentum", steps=args.steps,
                          eval_every=max(1, args.steps // 100))


def first_below(curve, target, steps):
    """Step of the first value below ``target`` in ``curve`` taken at ``steps``; None if never."""
    hit = np.nonzero(np.asarray(curve) < target)[0]
    return int(steps[hit[0]]) if hit.size else None


def regression_part(args, ax):
    x, y = linear_data(jax.random.key(0), x_range=(0.0, args.x_max))
    out = {}
    for name in SCALINGS:
        xs = x if name == "raw" else fj.scaling.fit_scaler(name, x[:, None], 1e-8)(x[:, None])[:, 0]
        hess = 2 * jnp.array([[jnp.mean(xs ** 2), jnp.mean(xs)], [jnp.mean(xs), 1.0]])
        lr = float(1.0 / jnp.linalg.eigvalsh(hess)[-1])
        _, loss = gd_path(xs, y, jax.random.key(1), optimizer="sgd", lr=lr, steps=args.reg_steps)
        out[name] = {"lr": lr, "condition": float(np.linalg.cond(np.asarray(hess))),
                     "steps_to_target": first_below(loss, args.reg_target, np.arange(len(loss))),
                     "final_loss": float(loss[-1])}
        ax.semilogy(loss, label=f"{name} (cond {out[name]['condition']:.0f}, lr {lr:.3g})")
    ax.axhline(args.reg_target, color="k", ls=":", lw=1)
    ax.set_xlabel("GD step")
    ax.set_ylabel("loss on all 30 samples")
    ax.set_title(f"y = 3x + 2, x in [0, {args.x_max:g}]: full-batch GD")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return out


def raw_digits():
    """The split of ``fj.data.digits()`` with raw pixels 0..16 (not z-scored)."""
    (x_tr, y_tr), (x_te, y_te) = digits_split()
    f, i = (lambda a: jnp.asarray(a, jnp.float32)), (lambda a: jnp.asarray(a, jnp.int32))
    return fj.data.Task(x_test=f(x_te), y_test=i(y_te), x_train=f(x_tr), y_train=i(y_tr), name="digits-raw", n_in=64,
                        n_out=10, default_loss="softmax_ce")


def digits_part(args, study, ax):
    raw = raw_digits()
    tasks = {"raw": raw, "zscore": fj.scaling.scale_task(raw, "zscore"),
             "zca": fj.scaling.scale_task(raw, "zca", eps=args.zca_eps)}
    model = fj.mlp([64, args.width, 10])
    every = max(1, args.steps // 100)
    n_lr, out = len(args.lrs), {}
    for name, task in tasks.items():
        res = study.sweep({"sweep": f"digits-{name}"}, model, task,
            rule=args.rule, seeds=n_lr * args.seeds, steps=args.steps, batch_size=32,
            optimizer="momentum", lr=np.repeat(args.lrs, args.seeds), eval_every=every, progress=False)
        curves = np.where(res.diverged[:, None], np.inf, res.loss).reshape(n_lr, args.seeds, -1).mean(1)
        reach = [first_below(c, args.digits_target, res.eval_steps) for c in curves]
        best = min(range(n_lr), key=lambda i: (reach[i] is None, reach[i] or 0, curves[i, -1]))
        acc = res.final_test_acc.reshape(n_lr, args.seeds)[best]
        out[name] = {"best_lr": args.lrs[best], "steps_to_target": reach[best],
                     "steps_to_target_per_lr": dict(zip(map(str, args.lrs), reach)),
                     "final_train_loss": float(curves[best, -1]), "test_acc": float(np.nanmean(acc)),
                     "diverged_per_lr": dict(zip(map(str, args.lrs), map(int, res.diverged.reshape(n_lr, -1).sum(1))))}
        ax.semilogy(res.eval_steps, curves[best], label=f"{name}, best lr {args.lrs[best]:g} "
                    f"(test acc {out[name]['test_acc']:.3f})")
    ax.axhline(args.digits_target, color="k", ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel(f"training cross-entropy (mean of {args.seeds} seeds)")
    ax.set_title(f"digits, MLP 64-{args.width}-10, {args.rule}, SGD+momentum, best lr each")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return out


def body(args, study):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), dpi=100)
    reg = regression_part(args, axes[0])
    dig = digits_part(args, study, axes[1])
    fig.tight_layout()
    fig.savefig(study.out / "normalization.png")
    plt.close(fig)

    def fmt(d):
        return ", ".join(f"{k} {'never' if v['steps_to_target'] is None else v['steps_to_target']}" for k, v in d.items())

    verdict = (f"steps to loss < {args.reg_target}: regression {fmt(reg)} (of {args.reg_steps}); "
               f"steps to training loss < {args.digits_target} at the best of {len(args.lrs)} rates: digits ({args.rule}) "
               + ", ".join(f"{k} {'never' if v['steps_to_target'] is None else v['steps_to_target']} (lr {v['best_lr']:g})"
                           for k, v in dig.items()) + f" (of {args.steps})")
    return {"regression": reg, "digits": dig}, verdict


def main(argv=None):
    return lecture.run_lecture("normalization.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
