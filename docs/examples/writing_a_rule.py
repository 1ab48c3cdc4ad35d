"""Three learning rules written outside the library, each trained by fj.sweep on fj.mlp and on a wrapped Flax MLP.

    python docs/examples/writing_a_rule.py            # 4 seeds x 2000 steps per cell, ~30 s on 2 CPU cores
    python docs/examples/writing_a_rule.py --quick    # seconds (used by the tests)

The rules are those of docs/writing_a_rule.md: an FA-family backward (``sign_fa``), a DFA-family wiring
with its own output node (``unit_dfa``) and a rule defined by its objective (``wp``, weight perturbation).
Prints one table: final test accuracy (mean ± std over seeds) per rule and model, and the seconds each
sweep took (compile + run).
"""

import argparse
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

import fa_jax as fj

# -- 1. an FA-family rule: only the backward matrix is new -----------------------------------------------
# fixed random signs (those of the drawn B), every entry the mean |W| of the layer it stands for
sign_fa = fj.rules.fa_rule("sign_fa", lambda w, B: jnp.sign(B) * jnp.abs(w).mean(),
                           "FA with B_used = sign(B) * mean|W|: fixed signs, the forward weights' scale")


# -- 2. a wiring rule of the DFA family: a new output node -------------------------------------------------
# every hidden activation h_l receives u @ B_l, u the output error rescaled per example to the
# batch's mean error norm (the direction of each example's error, the batch's scale)
@jax.custom_vjp
def unit_error_node(y, hs, Bs):
    return y


def _node_fwd(y, hs, Bs):
    return y, (hs, Bs)


def _node_bwd(res, e):
    hs, Bs = res
    norm = jnp.linalg.norm(e, axis=-1, keepdims=True)
    u = e * norm.mean() / jnp.maximum(norm, 1e-12)
    return e, fj.rules.direct_signals(u, hs, Bs), [jnp.zeros_like(B) for B in Bs]


unit_error_node.defvjp(_node_fwd, _node_bwd)

unit_dfa = fj.Rule("unit_dfa", feedback_shapes=fj.RULES["dfa"].feedback_shapes, family="dfa",
                   output=lambda y, hs, feedback, targets=None: unit_error_node(y, hs, list(feedback)),
                   doc="DFA with each example's error rescaled to the batch's mean norm")


# -- 3. a rule defined by its objective: weight perturbation ----------------------------------------------
# two forward passes at params +- sigma * eps (eps ~ N(0, I)) estimate the directional derivative
# d = (L(p + sigma eps) - L(p - sigma eps)) / (2 sigma) ~ grad L . eps; the update is d * eps, an unbiased
# (for small sigma) but noisy estimate of the gradient, with no backward pass (Jabri & Flower 1992)
def wp_objective(model, params, batch, feedback, key, sigma=1e-3):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    eps = tree.unflatten([jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)])

    def loss_at(s):
        shifted = jax.tree.map(lambda p, e: p + s * sigma * e, params, eps)
        return batch.loss(model.apply(shifted, batch.x), batch.y)

    d = (loss_at(1.0) - loss_at(-1.0)) / (2 * sigma)
    logits = model.apply(params, batch.x)
    update = jax.tree.map(lambda e: d * e, eps)
    value = fj.rules.surrogate(batch.loss(logits, batch.y), update, params)  # value: the loss; grad: update
    return value, fj.rules.Aux(logits, metrics={"directional_derivative": d})


wp = fj.Rule("wp", objective=wp_objective, family="forward",
             doc="weight perturbation: d * eps, d the loss's central difference along eps ~ N(0, I)")

RULES = [fj.RULES["bp"], sign_fa, unit_dfa, wp]


class FlaxMLP(nn.Module):
    """The Flax twin of fj.mlp([n_in, width, width, 1]): Dense -> relu twice, Dense out."""

    width: int = 64

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.width)(x))
        x = nn.relu(nn.Dense(self.width)(x))
        return nn.Dense(1)(x)


def run(n=10, k=2, width=64, seeds=4, steps=2000, eval_every=200, lr=1e-3, progress=True) -> list[dict]:
    """Every rule of :data:`RULES` on k-sparse parity, on fj.mlp and on a wrapped Flax MLP; one row per cell."""
    task = fj.data.parity(n, k)
    models = {"fj.mlp": fj.mlp([n, width, width, 1]), "from_flax": fj.from_flax(FlaxMLP(width), (n,))}
    rows = []
    for rule in RULES:
        for label, model in models.items():
            t0 = time.perf_counter()
            res = fj.sweep(model, task, rule=rule, seeds=seeds, steps=steps, eval_every=eval_every, lr=lr,
                           progress=progress, desc=f"{rule.name} {label}")
            acc = res.final_test_acc
            rows.append({"rule": rule.name, "model": label, "acc_mean": float(jnp.nanmean(acc)),
                         "acc_std": float(jnp.nanstd(acc)), "seconds": time.perf_counter() - t0,
                         "rule_metrics": sorted(res.rule_metrics or {})})
    return rows


def table(rows) -> str:
    lines = ["| rule | model | test acc (mean ± std) | seconds | rule metrics |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['model']} | {r['acc_mean']:.3f} ± {r['acc_std']:.3f} | {r['seconds']:.1f} "
                     f"| {', '.join(r['rule_metrics']) or '-'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="writing_a_rule.py", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 seeds, 200 steps (a smoke test)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    kw = {"seeds": 2, "steps": 200, "eval_every": 100} if args.quick else {}
    t0 = time.perf_counter()
    rows = run(progress=not args.no_progress, **kw)
    print(table(rows))
    print(f"total {time.perf_counter() - t0:.1f} s, jax {jax.__version__}, {jax.devices()[0].platform}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
