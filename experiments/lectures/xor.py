"""XOR and initialization (the introductory deep-learning lectures): 2-4-1 sigmoid net, BCE, SGD lr 0.1 momentum 0.99, 1000 steps.

    python experiments/lectures/xor.py                 # 20 seeds vmapped per init, seconds on CPU
    python experiments/lectures/xor.py --rules bp,fa,dfa

Compares init U(-10, 10) with N(0, 1/fan_in) (``lecun_normal``: std 1/sqrt(fan_in)), biases 0;
a seed fails when it does not classify all four points after the last step (the lecture saw
6/20 vs 0/20 failures). Writes loss curves (xor.png) and summary.json with the verdict.
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fa_jax as fj  # noqa: E402
from fa_jax.runs import (
    cli,
    lecture,  # noqa: E402
)

QUICK = {"seeds": 2, "steps": 20}
INITS = {"U(-10, 10)": "uniform(10)", "N(0, 1/fan_in)": "lecun_normal"}


def parser():
    p = lecture.parser("xor.py", __doc__, QUICK)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.99)
    p.add_argument("--rules", type=cli.rule_list(), default=["bp"])
    return p


def check(args):
    lecture.positive(args, "seeds", "steps", "lr")
    for r in args.rules:
        fj.rules.get(r)
    fj.memory.check_sweep(fj.mlp([2, 4, 1]), fj.data.xor(), seeds=args.seeds, batch_size=4, optimizer="sgd",
                          steps=args.steps, eval_every=args.steps // 100 or 1)


def body(args, study):
    task = fj.data.xor()
    results, failures = {}, {}
    for rule in args.rules:
        for label, init in INITS.items():
            model = fj.mlp([2, 4, 1], activation="sigmoid", init=init)
            res = study.sweep({"sweep": f"{rule}-{label}"}, model, task,
                rule=rule, seeds=args.seeds,
                steps=args.steps, batch_size=4, optimizer="sgd", lr=args.lr,
                optimizer_hyper={"momentum": args.momentum}, loss="bce", eval_every=args.steps // 100 or 1,
                desc=f"{rule} {label}", progress=False)
            results[(rule, label)] = res
            failures[f"{rule} {label}"] = int(np.sum(~(res.test_acc[:, -1] == 1.0)))
    fig, axes = plt.subplots(len(args.rules), len(INITS), figsize=(9, 3.2 * len(args.rules)), dpi=100,
                             squeeze=False, sharey=True)
    for (rule, label), res in results.items():
        ax = axes[args.rules.index(rule), list(INITS).index(label)]
        fail = res.test_acc[:, -1] < 1.0
        for i in range(len(res.seeds)):
            ax.semilogy(res.eval_steps, res.test_loss[i], color="tab:red" if fail[i] else "tab:blue", alpha=0.6)
        ax.set_title(f"{rule}, init {label}: {int(fail.sum())}/{len(res.seeds)} fail", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("BCE loss (red: failed seed)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(study.out / "xor.png")
    plt.close(fig)
    verdict = "; ".join(f"{k}: {v}/{args.seeds} seeds fail" for k, v in failures.items())
    verdict += " (lecture: 6/20 with U(-10, 10) vs 0/20 with N(0, 1/sqrt(fan_in)))"
    return {"failures": failures, "seeds": args.seeds, "steps": args.steps}, verdict


def main(argv=None):
    return lecture.run_lecture("xor.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
