"""GD variants on linear regression (the introductory deep-learning lectures): y = 3x + 2 + U(-0.1, 0.1), 30 samples, L2 loss.

    python experiments/lectures/gd_variants.py

Batch GD, SGD (batch 1), mini-batch (8), momentum, Nesterov, Adagrad, RMSprop and Adam from
the same start: trajectories in (w, b) over the loss contours, and loss vs step
(gd_variants.png); the verdict lists the steps each needs to reach loss < --target.
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

from fa_jax.optim.gd_paths import gd_path, linear_data, mse_wb  # noqa: E402
from fa_jax.runs import lecture  # noqa: E402

QUICK = {"steps": 5}
# label: (optimizer, lr, batch size (None = all 30), extra hyperparameters)
VARIANTS = {
    "batch GD": ("sgd", 0.1, None, {}), "SGD (batch 1)": ("sgd", 0.1, 1, {}),
    "mini-batch (8)": ("sgd", 0.1, 8, {}), "momentum 0.9": ("momentum", 0.1, None, {}),
    "Nesterov 0.9": ("nesterov", 0.1, None, {}), "Adagrad": ("adagrad", 1.0, None, {}),
    "RMSprop": ("rmsprop", 0.1, None, {}), "Adam": ("adam", 0.3, None, {}),
}


def parser():
    p = lecture.parser("gd_variants.py", __doc__, QUICK)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--target", type=float, default=0.01, help="loss to reach (noise floor is 0.0033)")
    p.add_argument("--start", type=float, nargs=2, default=[-1.0, -1.0], metavar=("W", "B"))
    return p


def check(args):
    lecture.positive(args, "steps", "target")
    if not np.isfinite(args.start).all():
        raise InputError(f"--start must be finite, got {args.start}")
    if args.steps > 10**6:  # every step of every variant is kept (path and loss) and plotted
        raise InputError(f"--steps must be <= 1000000 (every step is recorded and plotted), got {args.steps}")


def body(args, study):
    x, y = linear_data(jax.random.key(0))
    fig, (ax_c, ax_l) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    ww, bb = np.meshgrid(np.linspace(-1.5, 5, 120), np.linspace(-1.5, 4, 120))
    grid = jnp.stack([ww, bb], -1)
    ax_c.contour(ww, bb, np.asarray(mse_wb(grid, x, y)), levels=np.geomspace(0.01, 40, 14), cmap="viridis", linewidths=0.6, alpha=0.6)
    reached = {}
    for i, (label, (opt, lr, bs, hyper)) in enumerate(VARIANTS.items()):
        path, loss = gd_path(x, y, jax.random.key(100 + i), optimizer=opt, lr=lr, batch_size=bs, steps=args.steps,
                             start=tuple(args.start), **hyper)
        hit = np.nonzero(loss < args.target)[0]
        reached[label] = int(hit[0]) if hit.size else None
        ax_c.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=1, label=label)
        ax_l.semilogy(loss, label=label)
    ax_c.plot([3], [2], "k*", ms=12)
    ax_c.set_xlabel("w")
    ax_c.set_ylabel("b")
    ax_c.set_title("trajectories over the loss contours (* = (3, 2))")
    ax_c.legend(fontsize=7)
    ax_l.set_xlabel("step")
    ax_l.set_ylabel("loss on all 30 samples")
    ax_l.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(study.out / "gd_variants.png")
    plt.close(fig)
    verdict = f"steps to loss < {args.target}: " + ", ".join(
        f"{k} {'never' if v is None else v}" for k, v in reached.items())
    return {"steps_to_target": reached, "variants": {k: list(v[:3]) for k, v in VARIANTS.items()}}, verdict


def main(argv=None):
    return lecture.run_lecture("gd_variants.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
