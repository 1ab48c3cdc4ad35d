"""Spectral MSE (the thesis chapter on losses, eq. 4.17) on phase-shifted signals: MLPs trained by BP, FA, DFA on MSE vs spectral MSE.

    python experiments/lectures/spectral.py

Task (``fj.data.phase_shift``): inputs are T = --t samples of a sum of --components sinusoids
(amplitudes U(0.5, 1.5), integer frequencies 1..--max-freq cycles per window, random phases)
plus white Gaussian noise of std --noise; the target is the clean signal with every component's
phase advanced by --shift radians (pi / 2: each sine becomes a cosine). Training signals are
fresh at every step; the 512 test signals are fixed. An MLP T-W-W-T (ReLU) is trained with Adam
(lr --lr, batch 64) by every rule under loss mse and under loss spectral_mse, --seeds seeds
vmapped per cell, and every trained model is evaluated on the test set under both metrics:
mse (mean over signals of the sum over the T samples of the squared error) and spectral_mse
(mean over signals and the T/2 + 1 rfft bins of the squared difference of DFT magnitudes).
Writes spectral.png (learning curves, the test metrics, one test signal) and summary.json.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import math
import sys

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fa_jax as fj  # noqa: E402
from fa_jax.runs import (
    cli,  # noqa: E402
    lecture,  # noqa: E402
)
from fa_jax.runs.study import Study  # noqa: E402

QUICK = {"rules": ["dfa"], "seeds": 1, "steps": 20, "width": 8}
LOSSES = ("mse", "spectral_mse")


def parser():
    p = lecture.parser("spectral.py", __doc__, QUICK)
    p.add_argument("--rules", type=cli.rule_list(), default=["bp", "fa", "dfa"])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--t", type=int, default=64, help="samples per signal")
    p.add_argument("--components", type=int, default=3, help="sinusoids per signal")
    p.add_argument("--max-freq", type=int, default=8, help="highest frequency, cycles per window (< t / 2)")
    p.add_argument("--noise", type=float, default=0.5, help="std of the input noise")
    p.add_argument("--shift", type=float, default=math.pi / 2, help="phase shift of the target, radians")
    return p


def task_of(args):
    return fj.data.phase_shift(args.t, args.components, args.max_freq, args.noise, args.shift)


def check(args):
    lecture.positive(args, "seeds", "steps", "width", "lr")
    for r in args.rules:
        fj.rules.get(r)
    task = task_of(args)  # one-line errors for t, components, max_freq, noise, shift
    Study.plan(({"rule": r, "loss": loss} for r in args.rules for loss in LOSSES),
               model=fj.mlp([args.t, args.width, args.width, args.t]), task=task,
               **sweep_kw(args))  # every cell checked as body will sweep it, before --out opens


def sweep_kw(args) -> dict:
    """The :func:`fa_jax.sweep` arguments every cell shares (its rule and loss aside)."""
    return {"seeds": args.seeds, "steps": args.steps, "batch_size": 64, "optimizer": "adam", "lr": args.lr,
            "eval_every": args.steps // 50 or 1}


def _stats(v):
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if v.size else None, "std": float(v.std()) if v.size else None}


def _fmt(s):
    return "n/a" if s["mean"] is None else f"{s['mean']:.3g} ± {s['std']:.2g}"


def body(args, study):
    task = task_of(args)
    model = fj.mlp([args.t, args.width, args.width, args.t])
    x, y = task.x_test, task.y_test
    metrics = {m: jax.jit(jax.vmap(fj.losses.get(m), in_axes=(0, None))) for m in LOSSES}
    predict = jax.jit(jax.vmap(lambda p: model.apply(p, x)))
    result, curves, example = {}, {}, {}
    for rule in args.rules:
        for loss in LOSSES:
            res = study.sweep({"rule": rule, "loss": loss}, model, task, rule=rule, loss=loss, progress=False,
                              **sweep_kw(args))
            pred = predict(res.state.params)  # (S, n_test, T); the forward pass is the same for every rule
            ok = ~res.diverged
            cell = {f"test_{m}": _stats(np.where(ok, np.asarray(f(pred, y)), np.nan)) for m, f in metrics.items()}
            result[f"{rule}/{loss}"] = {"rule": rule, "loss": loss, **cell, "diverged": int((~ok).sum())}
            curves[(rule, loss)] = (res.eval_steps, np.where(res.diverged_mask, np.nan, res.test_loss))
            if rule == args.rules[0]:
                example[loss] = np.asarray(pred[0, 0])
    clean = task.aux["clean_test"]
    baselines = {name: {m: float(fj.losses.get(m)(p, y)) for m in LOSSES}
                 for name, p in (("zero", 0 * y), ("noisy input", x), ("clean unshifted input", clean))}
    plot(args, study.out / "spectral.png", result, curves, example, np.asarray(x[0]), np.asarray(y[0]))
    verdict = (f"phase-shift signals (T={args.t}, noise {args.noise:g}, shift {args.shift:.3g} rad), {args.steps} steps, "
               f"{args.seeds} seeds, test mse / spectral_mse: " + "; ".join(
                   f"{v['rule']} trained on {v['loss']} {_fmt(v['test_mse'])} / {_fmt(v['test_spectral_mse'])}"
                   for v in result.values())
               + "; the clean unshifted input {:.3g} / {:.2g}, zero {:.3g} / {:.3g}".format(
                   *baselines["clean unshifted input"].values(), *baselines["zero"].values()))
    return {"cells": result, "baselines": baselines}, verdict


def plot(args, path, result, curves, example, x0, y0):
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), dpi=100)
    for ax, loss in zip(axes[0], LOSSES):
        for i, rule in enumerate(args.rules):
            steps, c = curves[(rule, loss)]
            mean = np.nanmean(c, 0) if np.isfinite(c).any() else np.full(c.shape[1], np.nan)
            ax.semilogy(steps, mean, color=f"C{i}", label=f"{rule} ({args.seeds} seeds, mean)")
        ax.set_xlabel("step")
        ax.set_ylabel(f"test {loss}")
        ax.set_title(f"trained on {loss}: its own test loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[1, 0]
    names = list(result)
    pos = np.arange(len(names))
    for j, m in enumerate(LOSSES):
        vals = [result[n][f"test_{m}"] for n in names]
        ax.bar(pos + (j - 0.5) * 0.4, [np.nan if v["mean"] is None else v["mean"] for v in vals], 0.4,
               yerr=[0 if v["std"] is None else v["std"] for v in vals], label=f"test {m}")
    ax.set_yscale("log")
    ax.set_xticks(pos, [n.replace("/", "\n") for n in names], fontsize=8)
    ax.set_title("every trained model under both metrics (mean ± std over seeds)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[1, 1]
    n = np.arange(len(y0))
    ax.plot(n, x0, color="0.7", lw=1, label="input (noisy)")
    ax.plot(n, y0, "k", lw=2, label="target (clean, shifted)")
    for loss, pred in example.items():
        ax.plot(n, pred, lw=1.5, ls="--" if loss == "spectral_mse" else "-", label=f"{args.rules[0]} trained on {loss}")
    ax.set_xlabel("sample n")
    ax.set_title("test signal 0, seed 0")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    return lecture.run_lecture("spectral.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
