"""Per-step time of every rule (default: BP, FA, DFA, the eight others and the local rules) for MLPs of several sizes.

    python benchmarks/bench_rules.py                      # CPU: small + medium
    python benchmarks/bench_rules.py --sizes small,medium,large --precision tf32   # a GPU

One jitted training step (forward, the rule's gradient via jax.grad, Adam update) per Python
dispatch, one seed, batch resident on the device. Median of --repeats after warm-up,
``block_until_ready``; FLOPs from XLA's cost analysis of the compiled step. Ratios
to BP (DFA/BP, FA/BP, ... for every rule) come from the same run. Rules with evolving feedback
(kp, wm, brsf) run their feedback hook in the step and drtp gets the targets, as in fj.sweep.
"extra fwd" is ``(step - BP's step) / forward``, the forward pass (``model.apply``, jitted) timed in
the same run: what a rule costs beyond BP, counted in forward passes.
"""

import jax
import optax
from timing import base_parser, device_memory, environment, flops_of, median_time, memory_of, precision, write

import fa_jax as fj

SIZES = {  # name: (layer sizes, batch)
    "small": ([784, 256, 256, 256, 10], 128),
    "medium": ([784, 1024, 1024, 1024, 10], 512),
    "large": ([784, 4096, 4096, 4096, 4096, 10], 4096),
}


def make_step(model, rule, tx):
    """The jitted step, as fj.make_train_step does it: ``jax.grad`` of the rule's objective
    (:meth:`fa_jax.Rule.train_objective`), then the rule's feedback hook (kp, wm, brsf) instead of
    optax.apply_updates when it has one."""
    r = fj.rules.get(rule)

    def step(params, opt_state, fb, key, x, y):
        batch = fj.rules.Batch(x, y, fj.losses.softmax_ce)
        g = jax.grad(lambda p: r.train_objective(model, p, batch, fb, key)[0])(params)
        updates, opt_state = tx.update(g, opt_state, params)
        if r.update_feedback is None:
            return optax.apply_updates(params, updates), opt_state, fb
        params, fb = r.update_feedback(params, fb, updates, key)
        return params, opt_state, fb

    return jax.jit(step, donate_argnums=(0, 1))


def bench(size, rules, repeats):
    sizes, batch = SIZES[size]
    model = fj.mlp(sizes)
    k = jax.random.key(0)
    x = jax.random.normal(jax.random.fold_in(k, 1), (batch, sizes[0]))
    y = jax.random.randint(jax.random.fold_in(k, 2), (batch,), 0, sizes[-1])
    tx = optax.adam(1e-3)
    rows = []
    for rule in rules:
        r = fj.rules.get(rule)
        params = model.init(k)
        if r.init_params is not None:  # the rule's own trainable extras (local heads, ff's label weights)
            params = r.init_params(jax.random.fold_in(k, 5), model, params)
        fb = fj.init_feedback(jax.random.fold_in(k, 3), model, rule)
        opt_state = tx.init(params)
        step = make_step(model, rule, tx)
        key = jax.random.fold_in(k, 4)
        compiled = step.lower(params, opt_state, fb, key, x, y).compile()
        flops = flops_of(compiled)
        mem = memory_of(compiled)
        state = [params, opt_state, fb]

        def call():
            state[0], state[1], state[2] = compiled(state[0], state[1], state[2], key, x, y)
            return state[0]

        t = median_time(call, repeats=repeats)
        rows.append({"size": size, "layers": sizes, "batch": batch, "rule": rule, "step_ms": t * 1e3,
                     "gflop_per_step": None if flops is None else flops / 1e9,
                     "tflops": None if flops is None else flops / t / 1e12,
                     "xla_peak_mib": None if mem is None else mem["peak_estimate"] / 2**20})
    fwd = jax.jit(lambda p, x: model.apply(p, x))
    params = model.init(k)
    fwd_ms = median_time(lambda: fwd(params, x), repeats=repeats) * 1e3
    bp = next((r["step_ms"] for r in rows if r["rule"] == "bp"), None)
    for r in rows:
        r["ratio_vs_bp"] = None if bp is None else r["step_ms"] / bp
        r["forward_ms"] = fwd_ms
        r["extra_forwards"] = None if bp is None else (r["step_ms"] - bp) / fwd_ms
    return rows


def main():
    p = base_parser(__doc__.splitlines()[0], "benchmarks/results/bench_rules.json")
    p.add_argument("--sizes", default=None, help="comma-separated from small, medium, large")
    p.add_argument("--rules", default="bp,fa,dfa,usf,frsf,brsf,kp,wm,sdfa,drtp,pepita,local,ff,fg,fg(kind=activity),"
                                     "node_pert")
    a = p.parse_args()
    sizes = a.sizes.split(",") if a.sizes else (["small", "medium", "large"] if jax.default_backend() == "gpu"
                                                else ["small", "medium"])
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"error: unknown size {s!r}; known: {', '.join(SIZES)}")
    rules = fj.rules.split_specs(a.rules)
    for r in rules:
        fj.rules.get(r)
    env = environment(a.precision)
    print(f"device: {env['device_kind']} ({env['backend']}), jax {env['versions']['jax']}, precision {a.precision}")
    rows = []
    with precision(a.precision):
        for s in sizes:
            rows += bench(s, rules, a.repeats)
    print("| size | layers | batch | rule | ms/step | GFLOP/step | TFLOP/s | / BP | extra fwd | XLA peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        layers = "-".join(map(str, r["layers"]))
        gf = "—" if r["gflop_per_step"] is None else f"{r['gflop_per_step']:.2f}"
        tf = "—" if r["tflops"] is None else f"{r['tflops']:.3f}"
        mib = "—" if r["xla_peak_mib"] is None else f"{r['xla_peak_mib']:.0f}"
        extra = "—" if r["extra_forwards"] is None else f"{r['extra_forwards']:+.1f}"
        print(f"| {r['size']} | {layers} | {r['batch']} | {r['rule']} | {r['step_ms']:.3f} | {gf} | {tf} "
              f"| {r['ratio_vs_bp']:.2f}x | {extra} | {mib} |")
    dev_mem = device_memory()
    if dev_mem:
        print(f"device peak memory in use: {dev_mem['peak_bytes_in_use'] / 2**30:.2f} GiB "
              f"of {dev_mem['bytes_limit'] / 2**30:.1f} GiB")
    write(a.out, {"environment": env, "device_memory": dev_mem, "results": rows})


if __name__ == "__main__":
    main()
