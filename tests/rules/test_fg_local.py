"""fg with local losses (float64 where exact): each block's estimate against its formula with jax.grad of
local.py's own block loss, the mean over many directions against local's update within the predicted
variance, the heads' true gradient, local=none as before, a sweep, options and refusals (beta where it
has no effect, params without heads, errors naming the rule).

Statistics (as tests/rules/test_perturbation.py): the mean ``m`` of N estimates with covariance ``C / N``
has ``z_j = (m_j - g_j) / sqrt(C_jj / N)`` standard normal, ``max |z|`` checked against the Bonferroni
bound and ``N e^T C^-1 e`` against chi-square quantiles (false-failure rate 1e-6 each). Blocks draw
independent directions, so their chi-squares add. weight: ``C_l = ||g_l||^2 I + g_l g_l^T`` per block;
activity: ``W_l``'s and ``b_l``'s update ``sum_i [x_i; 1] (x) g_i`` with per example ``C_i = ||delta_i||^2 I
+ delta_i delta_i^T`` (``delta_i = dL_l/dz_l,i``), so ``C_l = sum_i [x_i; 1][x_i; 1]^T (x) C_i``.
"""

import inspect

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error
from scipy import stats

import fa_jax as fj
from fa_jax.rules import fg_local, layered, local
from fa_jax.rules import perturbation as pt

TOL = dict(rtol=1e-10, atol=1e-13)
N = 2048  # directions of the statistical test
ALPHA = 1e-6
LOSS, BETA = "predsim", 0.5  # both parts of predsim weigh


def _setup(seed=0, sizes=(5, 7, 6, 3), batch=8):
    """A tanh MLP (no dead units: the activity covariance is full rank for batch >= fan_in + 1), its
    float64 params with random heads (one compiled call), a batch (numpy draws)."""
    model = fj.mlp(list(sizes), activation="tanh")
    rng = np.random.default_rng(seed)
    params = jax.jit(lambda k: local.init_heads(k, model, model.init(k, jnp.float64)))(jax.random.key(seed))
    for p in params[:-1]:
        p["head"] = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), p["head"])
    x = jnp.asarray(rng.standard_normal((batch, sizes[0])))
    return model, params, fj.rules.Batch(x, jnp.arange(batch) % sizes[-1], fj.losses.softmax_ce)


def _block_loss(model, params, batch, k, shift=None):
    """Block k's own loss by local.py (every block's input detached; the task loss for the last), with
    ``shift`` added to its map's output; also every layer's input."""
    def wire(layers, ps, h):
        xs, hs = [], []
        for i, (layer, p) in enumerate(zip(layers, ps)):
            xs.append(h)
            h = layer(p, jax.lax.stop_gradient(h), layered.Shifted(shift if i == k else None))
            hs.append(h)
        return h, (xs, hs[:-1])

    logits, _, (xs, hs) = layered.forward(model, params, batch.x, wire)
    spec = local.LocalLoss(LOSS, BETA, "local")
    loss = batch.loss(logits, batch.y) if k == len(params) - 1 else \
        local.local_losses(spec, params[k:k + 1], hs[k:k + 1], logits, batch)["local"][0]
    return loss, xs


def _truth(kind, model, params, batch):
    """Independent of fg: local's update (jax.grad of its train_objective), and for activity each block's
    deltas dL_l/dz_l (B, n_l) and the layer inputs, for weight each block's params' gradient of L_l."""
    rule = fj.rules.get(f"local(beta={BETA};loss={LOSS})")
    want = jax.grad(lambda p: rule.train_objective(model, p, batch, None, jax.random.key(0))[0])(params)
    if kind == "weight":
        return want, [jax.grad(lambda p, k=k: _block_loss(model, p, batch, k)[0])(params)[k]
                      for k in range(len(params))]
    widths = [p["b"].shape[0] for p in params]
    deltas, xs = zip(*[jax.grad(lambda s, k=k: _block_loss(model, params, batch, k, s), has_aux=True)(
        jnp.zeros((batch.x.shape[0], w), jnp.float64)) for k, w in enumerate(widths)])
    return want, deltas, xs[0]


def _rule(kind, n):
    return fj.rules.get(f"fg(beta={BETA};kind={kind};local={LOSS};n={n})")


def _run(kind, n, model, params, batch, key):
    """``(estimate, the rule's (value, aux) and update, the task loss, the truth)``, one compiled call."""
    rule = _rule(kind, n)
    spec = local.LocalLoss(LOSS, BETA, rule.name)

    def run(p, k):
        out = jax.value_and_grad(lambda q: rule.train_objective(model, q, batch, None, k), has_aux=True)(p)
        task = batch.loss(model.apply(p, batch.x), batch.y)
        return fg_local.estimate(kind, spec, n, model, p, batch, k), out, task, _truth(kind, model, p, batch)

    return jax.jit(run)(params, key)


def _flat(tree):
    return np.concatenate([np.ravel(v) for v in jax.tree.leaves(tree)])


def _heads(tree):
    return [p["head"] for p in tree[:-1]]


def _check_blocks(means, truths, covs):
    """The z and chi-square checks (module doc), blocks' chi-squares summed."""
    white, dim = 0.0, 0
    for m, g, c in zip(means, truths, covs):
        e = m - g
        z = e / np.sqrt(np.diag(c) / N)
        assert np.abs(z).max() < stats.norm.isf(ALPHA / (2 * sum(map(len, truths)))), np.abs(z).max()
        white += N * e @ np.linalg.solve(c, e)
        dim += len(e)
    assert stats.chi2.ppf(ALPHA / 2, dim) < white < stats.chi2.isf(ALPHA / 2, dim), (white, dim)


def _wb(p):
    return np.concatenate([p["w"], p["b"][None]]).ravel()  # [W; b] flattened row-major


@pytest.mark.parametrize("kind", ["activity", "weight"])
def test_each_block_estimates_its_own_local_gradient_and_the_mean_is_locals_update(x64, kind):
    """N directions in one compiled call. Each draw: activity d_jk,i = B dL_k/dz_k,i . u_jk,i, g_z_k =
    mean_j d_jk u_jk / B, W_k's update x_k^T g_z_k; weight d_jk = grad_{theta_k} L_k . v_jk, update
    mean_j d_jk v_jk. The heads take local's gradient exactly; the blocks' mean is local's update within
    the predicted variance (module doc)."""
    model, params, batch = _setup()
    e, ((value, aux), update), task, (want, *truth) = _run(kind, N, model, params, batch, jax.random.key(1))
    b, blocks, covs = batch.x.shape[0], [], []
    for k in range(len(params)):
        if kind == "activity":
            dk, xk = (np.asarray(t[k]) for t in truth)
            u = np.asarray(e.directions[k])
            d = b * np.einsum("ik,jik->ji", dk, u)
            g = np.einsum("ji,jik->ik", d, u) / N / b
            np.testing.assert_allclose(e.update[k], g, **TOL)
            blocks.append({"w": xk.T @ g, "b": g.sum(0)})
            xt = np.concatenate([xk, np.ones((b, 1))], 1)
            covs.append(sum(np.kron(np.outer(x, x), (di @ di) * np.eye(len(di)) + np.outer(di, di))
                            for x, di in zip(xt, dk)))
        else:
            v = np.concatenate([np.reshape(a, (N, -1)) for a in jax.tree.leaves(e.directions[k])], 1)
            gk = _flat(fg_local.block_params(truth[0])[k])
            d = v @ gk
            blocks.append(jax.tree.map(lambda a, d=d: np.einsum("j,j...->...", d, a) / N, e.directions[k]))
            g = _flat(fg_local.block_params(want)[k])
            covs.append((g @ g) * np.eye(len(g)) + np.outer(g, g))
        np.testing.assert_allclose(e.d[:, k], d, **TOL)
        chex.assert_trees_all_close(fg_local.block_params(update)[k], blocks[k], **TOL)
    chex.assert_trees_all_close(_heads(update), _heads(want), **TOL)
    np.testing.assert_allclose(value, task, **TOL)
    np.testing.assert_allclose(aux.metrics["fg_directional_derivative"], np.abs(e.d).mean(), **TOL)
    assert set(aux.metrics) == {"fg_directional_derivative", "local_loss", "local_pred", "local_sim"}
    flat = _wb if kind == "activity" else _flat
    means, truths = ([flat(p) for p in fg_local.block_params(t)] for t in (update, want))
    _check_blocks(means, truths, covs)


def test_local_none_is_fg_as_before():
    """Every spelling of local=none is the very rule object fg was (its updates: test_perturbation.py)."""
    for kind in ("weight", "activity"):
        rule = fj.rules.get(f"fg(kind={kind})")
        assert fj.rules.get(f"fg(beta=0.99;kind={kind};local=none)") is rule and rule.init_params is None
        assert ("Ren et al." if kind == "activity" else "Baydin et al.") in rule.doc
    assert fj.rules.get("fg").name == "fg" and fj.rules.get("fg(kind=activity;local=none)").name == "fg(kind=activity)"
    assert dict(fj.rules.get("fg").options) == {"kind": "weight", "n": 1, "local": "none", "beta": 0.99}


def test_fg_local_pred_sweeps_with_finite_updates_and_learning_heads():
    """A 1-hidden-layer MLP, 2 seeds, 3 steps: finite, the heads learn (zero at init); fg with local
    losses is not BP: the jit and vmap test of tests/rules/test_perturbation.py."""
    model, task = fj.mlp([5, 8, 1]), fj.data.parity(5, 2, n_train=32, n_test=32)
    res = fj.sweep(model, task, rule="fg(local=pred)", seeds=2, steps=3, eval_every=3, batch_size=16,
                   progress=False)
    assert np.isfinite(res.loss).all() and (res.diverged_at == -1).all()
    assert all(np.isfinite(v).all() for v in res.rule_metrics.values())
    assert {"fg_directional_derivative", "local_loss", "local_pred"} <= set(res.rule_metrics)
    params = res.state.params
    assert (np.abs(np.asarray(params[0]["head"]["w"])).reshape(2, -1).max(1) > 0).all()
    assert np.isfinite(_flat(params)).all()


class _Flax(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(jnp.tanh(nn.Dense(6)(x)))


def _default(fn, name):
    return inspect.signature(fn).parameters[name].default


class _NoHiddenShapes:
    layers = []


def test_options_spec_round_trip_and_one_line_refusals(keys):
    rule = fj.rules.get("fg(kind=activity;local=pred)")
    assert rule.name == "fg(kind=activity;local=pred)" and fj.rules.get(rule.name) is rule
    assert dict(rule.options) == {"kind": "activity", "n": 1, "local": "pred", "beta": 0.99}
    assert fj.rules.get("fg(local=predsim, beta=0.5, n=2)").name == "fg(beta=0.5;local=predsim;n=2)"
    assert fj.rules.get("fg(local=sim)").init_params is None and rule.init_params.func is local.init_heads
    assert rule.family is fj.rules.Family.FORWARD
    assert _default(pt.fg, "beta") == _default(local.local, "beta")  # fg's beta default is local's
    one_line_error(lambda: fj.rules.get("fg(local=bp)"),
                   "unknown fg option local 'bp'; known: none, pred, sim, predsim")
    one_line_error(lambda: fj.rules.get("fg(local=pred;beta=1.5)"), "fg: beta must be in [0, 1], got 1.5")
    # beta weighs predsim's sim part: a non-default beta anywhere else is refused, as local refuses it
    for other in ("none", "pred", "sim"):
        one_line_error(lambda o=other: fj.rules.get(f"fg(beta=0.5;local={o})"),
                       f"fg: beta weighs local=predsim's sim part; got beta=0.5 with local={other}")
    assert fj.rules.get("fg(beta=0.99;local=pred)").name == "fg(local=pred)"
    one_line_error(lambda: fj.rules.check_model("fg(local=sim)", fj.from_flax(_Flax(), (5,))),
                   "rule 'fg(local=sim)' runs a model block by block")
    one_line_error(lambda: fj.rules.check_model("fg(kind=activity;local=pred)", fj.norm_mlp([5, 8, 3], norm="layer")),
                   "params ['scale', 'shift'] of this model would get no update")
    fj.rules.check_model("fg(local=pred)", fj.norm_mlp([5, 8, 3], norm="layer"))
    # local's helpers name the rule that calls them
    one_line_error(lambda: fj.rules.check_model("fg(n=2;local=predsim)", _NoHiddenShapes()),
                   "rule 'fg(local=predsim;n=2)' (its local pred heads)")
    model = fj.mlp([5, 8, 3])
    one_line_error(lambda: fj.rules.get("fg(local=pred)").init_params(keys(1)[0], _NoHiddenShapes(), []),
                   "rule 'fg(local=pred)' (its local pred heads)")
    # params without the heads (model.init alone): a one-line error when the objective is traced
    batch = fj.rules.Batch(jnp.ones((4, 5)), jnp.arange(4) % 3, fj.losses.softmax_ce)
    for spec in ("fg(local=pred)", "fg(kind=activity;local=predsim)"):
        objective = fj.rules.get(spec).train_objective
        one_line_error(lambda o=objective: jax.eval_shape(lambda p: o(model, p, batch, None, keys(1)[0]),
                                                          model.init(keys(1)[0])),
                       f"rule {spec!r} reads block 0's local head at params[0]['head'], which these params lack")
