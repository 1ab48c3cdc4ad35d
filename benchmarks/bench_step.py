"""The MLP training step, fa_jax against a plain Flax reference: ms/step, and the FA backward's HLO.

    python benchmarks/bench_step.py          # small + medium, bp + fa -> results/bench_step_<backend>.json
    python benchmarks/bench_step.py --hlo    # op counts of the compiled FA backward, fa_jax vs reference

The step (ReLU MLP, float32, softmax cross-entropy, ``optax.sgd(0.01)``, one jitted call): fa_jax's
is ``jax.grad`` through ``fj.mlp(sizes).apply(params, x, rule=, feedback=)``; the reference is a
``flax.linen`` MLP of ``nn.Dense`` (bp) or of Dense layers whose matmul is a ``jax.custom_vjp``
sending ``delta @ B.T`` to the input, ``x.T @ delta`` to the kernel, ``delta.sum(0)`` to the bias
(fa). Same weights, same B; one step of each must give the same params (rtol 1e-5) before timing.
Each of ``--rounds`` rounds times both in a shuffled order (median of ``--repeats`` calls after
warm-up); reported: medians over rounds, and the ratio fa_jax / flax with its range.
``--hlo``: for the small size, the compiled gradient of one FA layer (a hidden layer; the first
layer, whose input cotangent is unused) and of the whole FA step: op counts, traced equations.
"""

import collections
import random
import re
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from bench_rules import make_step
from timing import base_parser, environment, median_time, precision, write

import fa_jax as fj
from fa_jax.rules.core import fa_linear

SIZES = {  # name: (layer sizes, batch)
    "tiny": ([20, 16, 16, 4], 8),
    "small": ([784, 256, 256, 256, 10], 128),
    "medium": ([784, 1024, 1024, 1024, 10], 512),
}
OPS = ("dot", "transpose", "copy", "fusion", "broadcast", "reduce")
LR = 0.01


@jax.custom_vjp
def fa_dense(x, kernel, bias, B):
    """x @ kernel + bias; backward: delta @ B.T to x, x.T @ delta to kernel, delta.sum(0) to bias."""
    return x @ kernel + bias


def _fa_dense_bwd(res, delta):
    x, B = res
    return delta @ B.T, x.T @ delta, delta.sum(0), None


fa_dense.defvjp(lambda x, kernel, bias, B: (x @ kernel + bias, (x, B)), _fa_dense_bwd)


class FADense(nn.Module):
    """nn.Dense's params (kernel, bias) with :func:`fa_dense` as its map."""

    features: int

    @nn.compact
    def __call__(self, x, B):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return fa_dense(x, kernel, bias, B)


class MLP(nn.Module):
    """Dense-relu layers of ``sizes[1:]``, the last linear; ``fa``: FADense layers fed ``Bs``."""

    sizes: tuple
    fa: bool = False

    @nn.compact
    def __call__(self, x, Bs=None):
        for i, h in enumerate(self.sizes[1:]):
            x = FADense(h, name=f"dense{i}")(x, Bs[i]) if self.fa else nn.Dense(h, name=f"dense{i}")(x)
            x = nn.relu(x) if i < len(self.sizes) - 2 else x
        return x


def flax_step(module, tx):
    """The reference step, with make_step's signature (params, opt_state, fb, key, x, y)."""

    def step(params, opt_state, fb, key, x, y):
        del key
        loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(module.apply(p, x, fb), y).mean()  # noqa: E731
        updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state, fb

    return jax.jit(step, donate_argnums=(0, 1))


def as_flax(params):
    """fa_jax MLP params (a list of {"w", "b"}) as the reference's tree, {"params": {"dense<i>": ...}}."""
    return {"params": {f"dense{i}": {"kernel": p["w"], "bias": p["b"]} for i, p in enumerate(params)}}


def setup(size, rule):
    """(x, y, fb, {"fa_jax": (jitted step, params), "flax": (jitted step, params)}) for one size and rule."""
    sizes, batch = SIZES[size]
    k = jax.random.key(0)
    x = jax.random.normal(jax.random.fold_in(k, 1), (batch, sizes[0]))
    y = jax.random.randint(jax.random.fold_in(k, 2), (batch,), 0, sizes[-1])
    model, module, tx = fj.mlp(sizes), MLP(tuple(sizes), fa=rule == "fa"), optax.sgd(LR)
    params = model.init(jax.random.fold_in(k, 3))
    fb = fj.init_feedback(jax.random.fold_in(k, 4), model, rule)
    fparams = as_flax(params)
    if jax.tree.structure(fparams) != jax.tree.structure(module.init(k, x, fb)):
        raise SystemExit("error: the copied params do not have the reference module's tree")
    steps = {"fa_jax": (make_step(model, rule, tx), params), "flax": (flax_step(module, tx), fparams)}
    return x, y, fb, steps


def timed_call(step, params, fb, x, y):
    """A no-argument call running the compiled step on its own copy of the state (params are donated)."""
    key, state = jax.random.key(5), [jax.tree.map(jnp.copy, params), optax.sgd(LR).init(params), fb]
    compiled = step.lower(*state, key, x, y).compile()

    def call():
        state[:] = compiled(*state, key, x, y)
        return state[0]

    return call


def bench(size, rule, rounds, repeats, rng):
    """One row: both steps' ms/step and their ratio, once one step of each gave the same params (rtol 1e-5)."""
    x, y, fb, steps = setup(size, rule)
    calls = {name: timed_call(s, p, fb, x, y) for name, (s, p) in steps.items()}
    try:
        for a, b in zip(jax.tree.leaves(as_flax(calls["fa_jax"]())), jax.tree.leaves(calls["flax"]()), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)
    except (AssertionError, ValueError) as e:
        raise SystemExit(f"error: {size}/{rule}: fa_jax and flax steps disagree, not timing\n{e}") from None
    times, ratios = {n: [] for n in calls}, []
    for _ in range(rounds):
        t = {n: median_time(calls[n], repeats=repeats) for n in rng.sample(list(calls), len(calls))}
        for n in t:
            times[n].append(t[n])
        ratios.append(t["fa_jax"] / t["flax"])
    sizes, batch = SIZES[size]
    return {"size": size, "layers": sizes, "batch": batch, "rule": rule, "rounds": rounds, "repeats": repeats,
            "fa_jax_ms": 1e3 * statistics.median(times["fa_jax"]), "flax_ms": 1e3 * statistics.median(times["flax"]),
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def op_counts(hlo: str) -> collections.Counter:
    """Instructions per opcode over every computation of an HLO module's text (fusion bodies included)."""
    ops = (re.match(r"\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*.*?\s([a-z][\w\-]*)\(", line) for line in hlo.splitlines())
    return collections.Counter(m.group(1) for m in ops if m)


def canonical(hlo: str) -> str:
    """An HLO module's text without its header, source metadata and names (renamed in order of use)."""
    body = re.sub(r", metadata=\{[^}]*\}", "", hlo.split("\n\n\n", 1)[-1])
    body = re.sub(r"([(,] ?)[\w.\-]+: ", r"\1", body)  # parameter names in computation signatures
    names = {}
    return re.sub(r"%[\w.\-]+", lambda m: names.setdefault(m.group(0), f"%v{len(names)}"), body)


def primitives(jaxpr, c=None) -> collections.Counter:
    """Equations per primitive of a traced program, sub-programs (jit, custom rules) included."""
    c = collections.Counter() if c is None else c
    for e in jaxpr.eqns:
        c[e.primitive.name] += 1
        for v in e.params.values():
            for sub in v if isinstance(v, (tuple, list)) else [v]:
                if hasattr(sub, "eqns"):
                    primitives(getattr(sub, "jaxpr", sub), c)
    return c


def hlo_report():
    """fa_jax's FA backward vs the reference's, small size: one layer (hidden, first) and the whole step."""
    sizes, batch = SIZES["small"]
    k, programs = jax.random.key(0), {}  # name -> impl -> (jitted fn, args)
    for label, (fi, fo), argnums in (("hidden layer 256x256, grad (h, w, b)", (256, 256), (0, 1, 2)),
                                     ("first layer 784x256, grad (w, b)", (784, 256), (1, 2))):
        args = [jax.random.normal(jax.random.fold_in(k, i), s)  # h, w, b, B, ct (the output's cotangent)
                for i, s in enumerate([(batch, fi), (fi, fo), (fo,), (fi, fo), (batch, fo)])]
        for impl, f in (("fa_jax", fa_linear), ("flax", fa_dense)):
            g = jax.grad(lambda h, w, b, B, ct, f=f: jnp.vdot(ct, f(h, w, b, B)), argnums=argnums)
            programs.setdefault(label, {})[impl] = (jax.jit(g), args)
    x, y, fb, steps = setup("small", "fa")
    for impl, (step, params) in steps.items():
        programs.setdefault("whole FA step " + "-".join(map(str, sizes)), {})[impl] = (
            step, (params, optax.sgd(LR).init(params), fb, jax.random.key(5), x, y))
    print(f"optimized HLO op counts (fusion bodies included) and traced jaxpr equations, batch {batch}")
    print("| program | impl | " + " | ".join(OPS) + " | HLO instructions | jaxpr eqns |")
    print("|---|---|" + "---|" * (len(OPS) + 2))
    notes = []
    for name, impls in programs.items():
        hlo, traced = {}, {}
        for impl, (fn, args) in impls.items():
            hlo[impl], traced[impl] = fn.lower(*args).compile().as_text(), primitives(jax.make_jaxpr(fn)(*args))
            c = op_counts(hlo[impl])
            print(f"| {name} | {impl} | " + " | ".join(str(c[o]) for o in OPS)
                  + f" | {sum(c.values())} | {sum(traced[impl].values())} |", flush=True)
        same = canonical(hlo["fa_jax"]) == canonical(hlo["flax"])
        compiled = "identical up to names" if same else "differ, " + difference(*map(op_counts, hlo.values()))
        notes.append(f"{name}: compiled modules {compiled}; traced eqns, fa_jax minus flax: "
                     + difference(*traced.values()))
    print("\n".join(notes))


def difference(a, b) -> str:
    """Per-name count difference a - b, e.g. "broadcast_in_dim +1, reshape -2" ("none" if equal)."""
    return ", ".join(f"{n} {a[n] - b[n]:+d}" for n in sorted(set(a) | set(b)) if a[n] != b[n]) or "none"


def main():
    p = base_parser(__doc__.splitlines()[0], None)
    p.add_argument("--sizes", default="small,medium", help=f"comma-separated from {', '.join(SIZES)}")
    p.add_argument("--rules", default="bp,fa", help="comma-separated from bp, fa")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--hlo", action="store_true", help="print the FA backward's HLO op counts instead of timing")
    a = p.parse_args()
    sizes, rules = a.sizes.split(","), a.rules.split(",")
    for what, names, known in (("size", sizes, list(SIZES)), ("rule", rules, ["bp", "fa"])):
        for n in set(names) - set(known):
            raise SystemExit(f"error: unknown {what} {n!r}; known: {', '.join(known)}")
    env = environment(a.precision)
    print(f"device: {env['device_kind']} ({env['backend']}), jax {env['versions']['jax']}, precision {a.precision}")
    with precision(a.precision):
        if a.hlo:
            return hlo_report()
        print("| size | rule | fa_jax ms | flax ms | fa_jax/flax median (range) |")
        print("|---|---|---|---|---|")
        rows, rng = [], random.Random(0)
        for s in sizes:
            for r in rules:
                row = bench(s, r, a.rounds, a.repeats, rng)
                print(f"| {s} {'-'.join(map(str, row['layers']))} b{row['batch']} | {r} | {row['fa_jax_ms']:.3f} "
                      f"| {row['flax_ms']:.3f} | {row['ratio_median']:.3f} ({row['ratio_min']:.2f}–"
                      f"{row['ratio_max']:.2f}) |", flush=True)
                rows.append(row)
    write(a.out or f"benchmarks/results/bench_step_{env['backend']}.json", {"environment": env, "results": rows})


if __name__ == "__main__":
    main()
