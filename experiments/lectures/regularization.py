"""Regularization (the introductory deep-learning lectures): L2 / L1 on an RBF net with one kernel per sample, and dropout /
weight decay / early stopping on a small MLP on digits (train vs validation curves).

    python experiments/lectures/regularization.py

Part 1: N=30 noisy samples of sin(pi x), one Gaussian kernel on each sample (width --sigma);
J = 1/2 sum_i (f(x_i) - y_i)^2 + alpha/2 |w|^2 (closed form) with alpha 0 vs 2, and
J + alpha |w|_1 (gradient, Adam) with alpha 0 vs 0.003: fitted curves and weights.
Part 2: an MLP 64-W-W-10 (--width, 256) on 300 digits (the rest validation) with plain Adam, dropout
0.5, and decoupled weight decay, under --rule; early stopping picks each seed's step of
lowest validation loss. Writes regularization.png and summary.json with the verdict.
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
from fa_jax.models import rbf  # noqa: E402
from fa_jax.models.norm_mlp import norm_mlp  # noqa: E402
from fa_jax.runs import lecture

QUICK = {"steps": 20, "seeds": 1, "rbf_steps": 20, "width": 16}


def parser():
    p = lecture.parser("regularization.py", __doc__, QUICK)
    p.add_argument("--sigma", type=float, default=0.1, help="RBF kernel width")
    p.add_argument("--rbf-steps", type=int, default=5000, help="gradient steps of the L1 fits")
    p.add_argument("--rule", default="bp")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--decay", type=float, default=0.1, help="decoupled weight decay (x lr)")
    return p


def check(args):
    lecture.positive(args, "sigma", "rbf_steps", "seeds", "steps", "n_train", "width")
    fj.rules.get(args.rule)
    fj.dropout.check_rate(args.dropout)
    fj.regularize.check_tools(decoupled_decay=args.decay)
    if args.rbf_steps > 10**6:  # rbf.fit keeps every step's loss
        raise InputError(f"--rbf-steps must be <= 1000000, got {args.rbf_steps}")
    fj.memory.check_sweep(fj.mlp([64, args.width, args.width, 10]), fj.data.digits(), rule=args.rule,
                          seeds=args.seeds, batch_size=32, steps=args.steps, eval_every=args.steps // 40 or 1)


def rbf_part(args, axes):
    kx, kn = jax.random.split(jax.random.key(0))
    x = jnp.sort(jax.random.uniform(kx, (30, 1), minval=-1, maxval=1), axis=0)
    y = jnp.sin(jnp.pi * x[:, 0]) + 0.2 * jax.random.normal(kn, (30,))
    p0 = rbf.init_rbf(x, 1, sigma=args.sigma)
    fits = {"L2 alpha=0": rbf.fit_output_lstsq(p0, x, y), "L2 alpha=2": rbf.fit_output_lstsq(p0, x, y, l2=2.0)}
    for a in (0, 0.003):  # mean squared error + l1 |w|_1 has the minimizer of 1/2 sum + (n l1 / 2) |w|_1
        fits[f"L1 alpha={a}"] = rbf.fit(p0, x, y, steps=args.rbf_steps, lr=0.01, l1=2 * a / 30)[0]
    grid = jnp.linspace(-1, 1, 400)[:, None]
    stats = {}
    for ax, pair in zip(axes, (("L2 alpha=0", "L2 alpha=2"), ("L1 alpha=0", "L1 alpha=0.003"))):
        ax.plot(x[:, 0], y, "k.", label="30 noisy samples")
        ax.plot(grid[:, 0], jnp.sin(jnp.pi * grid[:, 0]), "k:", lw=1, label="sin(pi x)")
        for name in pair:
            w = np.asarray(fits[name]["w"][:, 0])
            stats[name] = {"train_mse": float(jnp.mean((rbf.apply(fits[name], x)[:, 0] - y) ** 2)),
                           "w_l2": float(np.linalg.norm(w)), "w_l1": float(np.abs(w).sum()),
                           "near_zero_w": int((np.abs(w) < 1e-2).sum())}
            ax.plot(grid[:, 0], rbf.apply(fits[name], grid)[:, 0], label=f"{name} (|w|_2={stats[name]['w_l2']:.1f})")
        ax.set_ylim(-2.5, 2.5)
        ax.set_title(f"RBF, one kernel per sample: {pair[0].split()[0]}")
        ax.legend(fontsize=7)
    return stats


def mlp_part(args, study, ax):
    task = fj.data.digits()
    task = task.replace(x_test=jnp.concatenate([task.x_test, task.x_train[args.n_train:]]),
                        y_test=jnp.concatenate([task.y_test, task.y_train[args.n_train:]]),
                        x_train=task.x_train[: args.n_train], y_train=task.y_train[: args.n_train])
    sizes = [64, args.width, args.width, 10]
    configs = {"plain": (fj.mlp(sizes), {}), f"dropout {args.dropout}": (norm_mlp(sizes, dropout=args.dropout), {}),
               f"decay {args.decay}": (fj.mlp(sizes), {"decoupled_decay": args.decay})}
    out = {}
    for i, (name, (model, hyper)) in enumerate(configs.items()):
        res = study.sweep({"sweep": f"mlp-{name}"}, model, task,
            rule=args.rule, seeds=args.seeds, steps=args.steps, batch_size=32, lr=1e-3,
            optimizer_hyper=hyper, eval_every=args.steps // 40 or 1, progress=False)
        best = res.test_loss.argmin(axis=1)
        out[name] = {"final_val_acc": float(res.test_acc[:, -1].mean()),
                     "early_stop_val_acc": float(res.test_acc[np.arange(len(best)), best].mean()),
                     "best_step": [int(res.eval_steps[b]) for b in best],
                     "final_val_loss": float(res.test_loss[:, -1].mean()),
                     "best_val_loss": float(res.test_loss.min(axis=1).mean())}
        c = f"C{i}"
        ax.semilogy(res.eval_steps, res.loss.mean(0), "--", color=c, label=f"{name} train")
        ax.semilogy(res.eval_steps, res.test_loss.mean(0), color=c, label=f"{name} validation")
    ax.set_xlabel("step")
    ax.set_ylabel(f"cross-entropy (mean of {args.seeds} seeds)")
    ax.set_title(f"digits, {args.n_train} training images, {args.rule}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return out


def body(args, study):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    stats = rbf_part(args, axes[:2])
    mlp = mlp_part(args, study, axes[2])
    fig.tight_layout()
    fig.savefig(study.out / "regularization.png")
    plt.close(fig)
    verdict = ("RBF |w|_2: alpha 0 -> {:.1f}, L2 alpha 2 -> {:.1f}; weights below 0.01: L1 alpha 0 -> {}, 0.003 -> {}/30; "
               .format(stats["L2 alpha=0"]["w_l2"], stats["L2 alpha=2"]["w_l2"], stats["L1 alpha=0"]["near_zero_w"],
                       stats["L1 alpha=0.003"]["near_zero_w"])
               + f"digits MLP ({args.rule}) validation loss final / best: "
               + ", ".join(f"{k} {v['final_val_loss']:.3f} / {v['best_val_loss']:.3f}" for k, v in mlp.items()))
    return {"rbf": stats, "mlp": mlp}, verdict


def main(argv=None):
    return lecture.run_lecture("regularization.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
