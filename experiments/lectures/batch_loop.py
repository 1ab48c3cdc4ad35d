"""Batch vs loop (Fleuret's "Going deeper" lecture): one batched forward/backward vs a Python loop over the samples.

    python experiments/lectures/batch_loop.py

Times ``jax.grad`` of the loss of an MLP on a batch of --batch digits, once on the whole batch
(one jitted call) and once as a Python loop of jitted per-sample calls (summing the gradients),
each the median of --repeats runs after a warm-up; prints the ratio. The gradients agree.
Timings are of this machine at the time of the run (other processes may share the CPU).
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import sys
import time

import jax
import jax.numpy as jnp
import matplotlib

from fa_jax.errors import InputError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fa_jax as fj  # noqa: E402
from fa_jax.runs import lecture  # noqa: E402

QUICK = {"batch": 4, "repeats": 1, "width": 16}


def parser():
    p = lecture.parser("batch_loop.py", __doc__, QUICK)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rule", default="bp")
    return p


def check(args):
    lecture.positive(args, "batch", "width", "repeats")
    fj.rules.get(args.rule)
    task = fj.data.digits()
    if args.batch > task.n_train:
        raise InputError(f"--batch must be <= {task.n_train} (the digits training set), got {args.batch}")
    fj.memory.check_sweep(fj.mlp([64, args.width, args.width, 10]), task, seeds=1, batch_size=args.batch)


def _median_time(f, repeats):
    jax.block_until_ready(f())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def body(args, study):
    task = fj.data.digits()
    model = fj.mlp([64, args.width, args.width, 10])
    params = model.init(jax.random.key(0))
    fb = fj.init_feedback(jax.random.key(1), model, args.rule)
    x, y = task.x_train[: args.batch], task.y_train[: args.batch]

    def loss_sum(p, xb, yb):
        return fj.losses.softmax_ce(model.apply(p, xb, rule=args.rule, feedback=fb), yb) * xb.shape[0]

    grad = jax.jit(jax.grad(loss_sum))
    batched = lambda: grad(params, x, y)

    def looped():
        g = grad(params, x[:1], y[:1])
        for i in range(1, args.batch):
            g = jax.tree.map(jnp.add, g, grad(params, x[i:i + 1], y[i:i + 1]))
        return g

    gb, gl = batched(), looped()
    max_diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(gb), jax.tree.leaves(gl)))
    t_batch, t_loop = _median_time(batched, args.repeats), _median_time(looped, args.repeats)
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.barh(["batched (1 call)", f"loop ({args.batch} calls)"], [t_batch * 1e3, t_loop * 1e3])
    ax.set_xscale("log")
    ax.set_xlabel("ms per forward/backward of the batch")
    ax.set_title(f"{jax.devices()[0].platform}: loop / batch = {t_loop / t_batch:.0f}x")
    fig.tight_layout()
    fig.savefig(study.out / "batch_loop.png")
    plt.close(fig)
    verdict = (f"batch of {args.batch}, MLP 64-{args.width}-{args.width}-10, {args.rule}: batched {t_batch * 1e3:.2f} ms, "
               f"loop {t_loop * 1e3:.1f} ms, loop/batch = {t_loop / t_batch:.0f}x (max grad difference {max_diff:.1e})")
    return {"batched_s": t_batch, "loop_s": t_loop, "ratio": t_loop / t_batch, "max_grad_diff": max_diff,
            "device": str(jax.devices()[0])}, verdict


def main(argv=None):
    return lecture.run_lecture("batch_loop.py", parser(), QUICK, check, body, argv)


if __name__ == "__main__":
    sys.exit(main())
