"""A wrapped Flax model against the same built-in model: training-step time, same net, same weights.

    python benchmarks/bench_flax.py                       # MLP and conv net, bp / fa / dfa, CPU
    python benchmarks/bench_flax.py --rules bp,fa,dfa,kp --rounds 9

For each net and rule, the jitted training step (forward, the rule's gradient through
``model.apply``, Adam, the rule's feedback hook) of ``fj.from_flax(linen module)`` and of the
built-in model with the same layers, weights copied across (their gradients are checked to
agree before timing). Rounds interleave the two in a shuffled order; each round times both
(median of ``--repeats`` calls after warm-up) and the reported ratio is the median over rounds
of wrapped / built-in, so slow drifts of a shared machine cancel.
"""

import random
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from bench_rules import make_step
from timing import base_parser, environment, median_time, precision, write

import fa_jax as fj


class MLP(nn.Module):
    """Dense-relu layers of ``sizes[1:]``; the last is linear (the built-in fj.mlp's net)."""

    sizes: tuple

    @nn.compact
    def __call__(self, x):
        for h in self.sizes[1:-1]:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(self.sizes[-1])(x)


class CNN(nn.Module):
    """conv 16 k3 -> relu -> avgpool 2 -> conv 32 k3 -> relu -> avgpool 2 -> dense 128 -> relu -> dense 10."""

    @nn.compact
    def __call__(self, x):
        x = nn.avg_pool(nn.relu(nn.Conv(16, (3, 3))(x)), (2, 2), (2, 2))
        x = nn.avg_pool(nn.relu(nn.Conv(32, (3, 3))(x)), (2, 2), (2, 2))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def nets():
    """name -> (built-in model, wrapped model, input shape, batch)."""
    mlp_sizes = (784, 256, 256, 256, 10)
    cnn = fj.cnn.sequential((28, 28, 1), ["conv(16,3)", "relu", "avgpool(2)", "conv(32,3)", "relu", "avgpool(2)",
                                          "flatten", "dense(128)", "relu", "dense(10)"])
    return {
        "mlp 784-256-256-256-10": (fj.mlp(mlp_sizes), fj.from_flax(MLP(mlp_sizes), (784,)), (784,), 128),
        "cnn 28x28 conv16-conv32-fc128": (cnn, fj.from_flax(CNN(), (28, 28, 1)), (28, 28, 1), 64),
    }


def copied(builtin_params, wrapped):
    """The built-in params as the wrapped model's tree (one {"w", "b"} per weighted layer, in call order)."""
    tree = jax.tree.map(lambda a: a, wrapped.init(jax.random.key(0)))
    for path, p in zip(wrapped.kernel_paths, builtin_params):
        node = tree
        for k in path:
            node = node[k]
        node["kernel"], node["bias"] = p["w"], p["b"]
    return tree


def step_fn(model, rule, params, fb, x, y, tx):
    step = make_step(model, rule, tx)
    opt_state = tx.init(params)
    key = jax.random.key(5)
    compiled = step.lower(params, opt_state, fb, key, x, y).compile()
    state = [jax.tree.map(jnp.copy, params), opt_state, fb]

    def call():
        state[0], state[1], state[2] = compiled(state[0], state[1], state[2], key, x, y)
        return state[0]

    return call


def check_same_gradients(builtin, wrapped, rule, pb, pw, fbb, fbw, x, y):
    loss = fj.losses.softmax_ce
    extra = {"targets": y} if fj.rules.get(rule).needs_targets else {}
    gb = jax.grad(lambda p: loss(builtin.apply(p, x, rule=rule, feedback=fbb, **extra), y))(pb)
    gw = jax.grad(lambda p: loss(wrapped.apply(p, x, rule=rule, feedback=fbw, **extra), y))(pw)
    for a, b in zip([g["w"] for g in gb], wrapped.kernels(gw)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6)


def bench(name, builtin, wrapped, shape, batch, rules, rounds, repeats):
    k = jax.random.key(0)
    x = jax.random.normal(jax.random.fold_in(k, 1), (batch, *shape))
    y = jax.random.randint(jax.random.fold_in(k, 2), (batch,), 0, 10)
    tx = optax.adam(1e-3)
    pb = builtin.init(jax.random.fold_in(k, 3))
    pw = copied(pb, wrapped)
    rows = []
    for rule in rules:
        fbb = fj.init_feedback(jax.random.fold_in(k, 4), builtin, rule, params=pb)
        fbw = None if fbb is None else wrapped.feedback_tree(rule, list(fbb))
        check_same_gradients(builtin, wrapped, rule, pb, pw, fbb, fbw, x, y)
        calls = {"builtin": step_fn(builtin, rule, pb, fbb, x, y, tx), "wrapped": step_fn(wrapped, rule, pw, fbw, x, y, tx)}
        ratios, times = [], {"builtin": [], "wrapped": []}
        for _ in range(rounds):
            order = list(calls)
            random.shuffle(order)
            t = {n: median_time(calls[n], repeats=repeats) for n in order}
            for n in t:
                times[n].append(t[n])
            ratios.append(t["wrapped"] / t["builtin"])
        row = {"net": name, "batch": batch, "rule": rule, "builtin_ms": 1e3 * statistics.median(times["builtin"]),
               "wrapped_ms": 1e3 * statistics.median(times["wrapped"]), "ratio_median": statistics.median(ratios),
               "ratio_min": min(ratios), "ratio_max": max(ratios), "rounds": rounds}
        print(f"| {name} | {batch} | {rule} | {row['builtin_ms']:.3f} | {row['wrapped_ms']:.3f} "
              f"| {row['ratio_median']:.3f}x ({row['ratio_min']:.2f}–{row['ratio_max']:.2f}) |", flush=True)
        rows.append(row)
    return rows


def main():
    p = base_parser(__doc__.splitlines()[0], "benchmarks/results/bench_flax_cpu.json")
    p.add_argument("--rules", default="bp,fa,dfa")
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    rules = a.rules.split(",")
    for r in rules:
        fj.rules.get(r)
    random.seed(0)
    env = environment(a.precision)
    print(f"device: {env['device_kind']} ({env['backend']}), jax {env['versions']['jax']}, precision {a.precision}")
    print("| net | batch | rule | built-in ms/step | wrapped ms/step | wrapped / built-in (median, range) |")
    print("|---|---|---|---|---|---|")
    rows = []
    with precision(a.precision):
        for name, (builtin, wrapped, shape, batch) in nets().items():
            rows += bench(name, builtin, wrapped, shape, batch, rules, a.rounds, a.repeats)
    write(a.out, {"environment": env, "results": rows})


if __name__ == "__main__":
    main()
