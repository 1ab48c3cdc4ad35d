"""Microseconds per seed-step of a full training step for 1..256 vmapped seeds, scan 1 vs 200.

    python benchmarks/bench_sweep.py                  # 784-256x3-10 MLP, batch 128, BP
    python benchmarks/bench_sweep.py --seeds 1,4,16,64,256,1024 --precision tf32   # a GPU

One call = ``scan_len`` steps of (sample a batch, loss, grad, Adam update) for S seeds at once
(the same program ``fj.sweep`` runs). ``scan_len=1`` pays one Python dispatch per step;
``scan_len=200`` pays one per 200. Ratios to the single-seed, one-dispatch-per-step cost are
printed from the same run.
"""

import jax
import jax.numpy as jnp
from timing import base_parser, device_memory, environment, median_time, memory_of, precision, write

import fa_jax as fj
from fa_jax.training import sweep as train


def gaussian_task(n_in, n_out, n=4096):
    k = jax.random.key(7)
    x = jax.random.normal(k, (n, n_in))
    y = jax.random.randint(jax.random.fold_in(k, 1), (n,), 0, n_out)
    return fj.data.Task(x_test=x[:256], y_test=y[:256], x_train=x, y_train=y, name="gaussian",
                        n_in=n_in, n_out=n_out, default_loss="softmax_ce")


def largest_seed_count(rows):
    """Extrapolate XLA's peak-memory estimate linearly in the seed count to the device limit."""
    pts = sorted({r["seeds"]: r["xla_peak_bytes"] for r in rows if r["scan_len"] == 1 and r["xla_peak_bytes"]}.items())
    if len(pts) < 2:
        return None
    limit, what = fj.memory.device_limit()  # the GPU's bytes_limit, or physical RAM on CPU
    (s0, b0), (s1, b1) = pts[0], pts[-1]
    per_seed = (b1 - b0) / (s1 - s0)
    return {"bytes_per_seed": per_seed, "limit_bytes": limit, "limit": what,
            "max_seeds": int(s0 + (limit * 0.9 - b0) / per_seed)}


def main():
    p = base_parser(__doc__.splitlines()[0], "benchmarks/results/bench_sweep.json")
    p.add_argument("--seeds", default="1,8,64,256")
    p.add_argument("--scan", default="1,200")
    p.add_argument("--rule", default="bp")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--sizes", default="784,256,256,256,10")
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    model, task = fj.mlp(sizes), gaussian_task(sizes[0], sizes[-1])
    tx = fj.optimizer("adam", 1e-3)
    step = train.make_train_step(model, a.rule, fj.losses.softmax_ce, tx, a.batch_size)
    env = environment(a.precision)
    print(f"device: {env['device_kind']} ({env['backend']}), jax {env['versions']['jax']}, precision {a.precision}, "
          f"MLP {'-'.join(map(str, sizes))}, batch {a.batch_size}, rule {a.rule}")
    rows = []
    with precision(a.precision):
        for scan_len in [int(s) for s in a.scan.split(",")]:
            def run(state, task, n=scan_len):
                return jax.lax.scan(lambda s, _: step(s, task), state, None, length=n)[0]

            prog = jax.jit(jax.vmap(run, in_axes=(0, None)))
            for n_seeds in [int(s) for s in a.seeds.split(",")]:
                keys = jax.vmap(jax.random.key)(jnp.arange(n_seeds, dtype=jnp.uint32))
                state = jax.jit(jax.vmap(lambda k: train.init_state(k, model, a.rule, tx)))(keys)
                compiled = prog.lower(state, task).compile()
                mem = memory_of(compiled)
                holder = [state]

                def call():
                    holder[0] = compiled(holder[0], task)
                    return holder[0].step

                t = median_time(call, repeats=max(3, a.repeats // (4 if scan_len > 1 else 1)))
                rows.append({"scan_len": scan_len, "seeds": n_seeds, "call_ms": t * 1e3,
                             "us_per_seed_step": t / (scan_len * n_seeds) * 1e6,
                             "xla_peak_bytes": None if mem is None else mem["peak_estimate"]})
    base = next(r["us_per_seed_step"] for r in rows if r["scan_len"] == 1 and r["seeds"] == 1)
    print("| scan length | seeds | ms/call | µs per seed-step | vs 1 seed, 1 step/dispatch |")
    print("|---|---|---|---|---|")
    for r in rows:
        r["ratio_vs_single_dispatch"] = r["us_per_seed_step"] / base
        print(f"| {r['scan_len']} | {r['seeds']} | {r['call_ms']:.2f} | {r['us_per_seed_step']:.1f} "
              f"| {r['ratio_vs_single_dispatch']:.3f} (1/{1 / r['ratio_vs_single_dispatch']:.0f}) |")
    fit = largest_seed_count(rows)
    if fit:
        print(f"memory per seed ≈ {fit['bytes_per_seed'] / 2**20:.2f} MiB (XLA estimate); "
              f"largest seed count that fits in 90% of {fit['limit_bytes'] / 2**30:.1f} GiB ({fit['limit']}): "
              f"≈ {fit['max_seeds']}")
    dev_mem = device_memory()  # the device's own peak over every configuration above (GPUs; None on CPU)
    if dev_mem:
        print(f"device peak memory in use: {dev_mem['peak_bytes_in_use'] / 2**30:.2f} GiB "
              f"of {dev_mem['bytes_limit'] / 2**30:.1f} GiB")
    write(a.out, {"environment": env, "fit": fit, "device_memory": dev_mem,
                  "config": {"sizes": sizes, "batch": a.batch_size, "rule": a.rule}, "results": rows})


if __name__ == "__main__":
    main()
