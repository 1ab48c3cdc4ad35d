"""Vanishing and exploding gradients (the introductory deep-learning lectures): per-layer gradient norms at init, and clipping.

    python experiments/lectures/gradients.py

Part 1: a 50-layer chain of single units (and a width-32 variant), |dJ/dW_l| per layer at
init (median over seeds, vmapped) for sigmoid, tanh, LeCun tanh and ReLU under several inits.
Part 2: an exploding case (width-32 ReLU, 50 layers, init N(0, 0.3^2): the backward gain per
layer is > 1) trained by SGD with and without clipping by global norm (fj.sweep).
Writes gradients.png and summary.json with the verdict.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fa_jax as fj  # noqa: E402
from fa_jax.analysis.gradflow import layer_grad_norms  # noqa: E402
from fa_jax.runs import lecture  # noqa: E402

QUICK = {"depth": 3, "seeds": 1, "steps": 4}
CONFIGS = [("sigmoid", "glorot_normal"), ("sigmoid", "normal(4)"), ("tanh", "glorot_normal"),
           ("lecun_tanh", "lecun_normal"), ("relu", "he_normal")]


def parser():
    p = lecture.parser("gradients.py", __doc__, QUICK)
    p.add_argument("--depth", type=int, default=50, help="number of hidden layers")
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--steps", type=int, default=200, help="training steps of part 2")
    p.add_argument("--clip-norm", type=float, default=1.0)
    return p


def check(args):
    lecture.positive(args, "depth", "seeds", "steps", "clip_norm")
    fj.memory.check_sweep(fj.mlp([8] + [32] * args.depth + [1]), fj.data.parity(8, 2, n_train=256, n_test=256),
                          seeds=args.seeds, batch_size=64, optimizer="sgd", steps=args.steps,
                          eval_every=args.steps // 20 or 1)


def norms_at_init(depth, width, act, init, seeds):
    """(layers,) median over seeds of |dJ/dW_l| at init, MSE to random targets, batch 64."""
    model = fj.mlp([1] + [width] * depth + [1], activation=act, init=init)
    x = jax.random.normal(jax.random.key(1000), (64, 1))
    y = jax.random.normal(jax.random.key(1001), (64,))
    per_seed = jax.vmap(lambda k: layer_grad_norms(model, model.init(k), x, y, loss="mse"))(
        jax.random.split(jax.random.key(0), seeds))
    return np.median(np.asarray(per_seed), axis=0)


def body(args, study):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), dpi=100)
    summary = {"init_norms": {}}
    for ax, width in zip(axes[:2], (1, 32)):
        for act, init in CONFIGS:
            n = norms_at_init(args.depth, width, act, init, args.seeds)
            summary["init_norms"][f"width {width} {act} {init}"] = {"first": float(n[0]), "last": float(n[-1])}
            ax.semilogy(np.arange(1, len(n) + 1), n, label=f"{act}, {init}")
        ax.set_title(f"{args.depth} hidden layers of width {width}: |dJ/dW_l| at init")
        ax.set_xlabel("layer l (1 = input side)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    task = fj.data.parity(8, 2, n_train=256, n_test=256)
    model = fj.mlp([8] + [32] * args.depth + [1], activation="relu", init="normal(0.3)")
    diverged = {}
    for label, hyper in (("no clipping", {}), (f"clip_norm={args.clip_norm}", {"clip_norm": args.clip_norm})):
        res = study.sweep({"sweep": label}, model, task,
            seeds=args.seeds, steps=args.steps, batch_size=64, optimizer="sgd", lr=0.01,
            optimizer_hyper=hyper, eval_every=args.steps // 20 or 1, progress=False)
        diverged[label] = int(res.diverged.sum())
        finite = np.isfinite(res.loss).all(axis=1)
        med = np.median(res.loss[finite], axis=0) if finite.any() else np.full(res.eval_steps.shape, np.nan)
        axes[2].semilogy(res.eval_steps, med, label=f"{label}: {diverged[label]}/{args.seeds} diverged")
    axes[2].set_title("exploding case (ReLU, N(0, 0.3^2)), SGD lr 0.01")
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("median training loss (finite seeds)")
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(study.out / "gradients.png")
    plt.close(fig)
    s = summary["init_norms"]
    sig, relu = s["width 1 sigmoid glorot_normal"], s["width 32 relu he_normal"]
    verdict = (f"{args.depth} layers at init, |dJ/dW_1| vs |dJ/dW_L|: sigmoid width 1 {sig['first']:.1e} vs "
               f"{sig['last']:.1e} (vanishes), ReLU+He width 32 {relu['first']:.1e} vs {relu['last']:.1e}; "
               "exploding ReLU net: "
               + ", ".join(f"{k} {v}/{args.seeds} seeds diverged" for k, v in diverged.items()))
    summary["diverged"] = diverged
    return summary, verdict


def main(argv=None):
    return lecture.run_lecture("gradients.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
