"""Weight mirror (its FA gradients at the current B: tests/rules/test_rules.py): the mirror update
against numpy given the drawn noise, B turning towards a frozen W, options, and sweeps on mlp /
norm_mlp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.analysis import diagnostics as dg
from fa_jax.rules import mirror

TOL = dict(rtol=1e-11, atol=1e-13)
TASK = fj.data.parity(8, 2)


def test_the_hook_is_the_mirror_formula_given_the_noise(x64, keys):
    """B' = (1 - d) B + eta xi^T (xi W') / n per layer, W' the updated weight, xi from the layer's key."""
    k1, k2, k3 = keys(3)
    model = fj.mlp([6, 5, 4])
    params = model.init(k1, jnp.float64)
    fb = fj.init_feedback(k2, model, "wm", dtype=jnp.float64)
    updates = jax.tree.map(lambda a: 0.01 * jnp.ones_like(a), params)
    eta, d, sigma, n = 0.3, 0.2, 0.7, 9
    new_p, new_fb = fj.rules.get(f"wm(eta={eta}; d={d}; sigma={sigma}; n={n})").update_feedback(
        params, fb, updates, k3)
    for l, k in enumerate(jax.random.split(k3, 2)):
        w = np.asarray(params[l]["w"]) + 0.01
        xi = np.asarray(sigma * jax.random.normal(k, (n, w.shape[0]), jnp.float64))
        np.testing.assert_allclose(new_fb[l], (1 - d) * np.asarray(fb[l]) + eta * xi.T @ (xi @ w) / n, **TOL)
        np.testing.assert_allclose(new_p[l]["w"], w, **TOL)


def test_with_W_frozen_B_turns_towards_W(keys):
    k1, k2, k3 = keys(3)
    model = fj.mlp([8, 16, 16, 1])
    params = model.init(k1)
    fb = fj.init_feedback(k2, model, "wm")
    zero = jax.tree.map(jnp.zeros_like, params)
    hook = jax.jit(fj.rules.get("wm").update_feedback)
    angles = [dg.weight_alignment("wm", params, fb)]
    for k in jax.random.split(k3, 300):
        params, fb = hook(params, fb, zero, k)
        angles.append(dg.weight_alignment("wm", params, fb))
    angles = np.asarray(angles)  # (301, 2): the two hidden layers' angle(W_{l+1}, B_{l+1})
    assert (angles[0] > 60).all(), angles[0]
    assert (np.diff(angles[[0, 5, 10, 20]], axis=0) < 0).all(), angles[[0, 5, 10, 20]]  # turning towards W
    assert (angles[-100:].mean(0) < 7).all(), angles[-100:].mean(0)  # to within the noise's few degrees


def test_options_and_their_errors():
    assert "eta=0.05" in fj.RULES["wm"].doc
    one_line_error(lambda: fj.rules.get("wm(d=1)"), "wm: d must be in [0, 1), got 1")
    one_line_error(lambda: fj.rules.get("wm(eta=-1)"), "wm: eta")
    one_line_error(lambda: fj.rules.get("wm(n=2.5)"), "wm: n")
    one_line_error(lambda: fj.rules.get("wm(lam=1)"), "rule 'wm' has no option 'lam'; its options: eta, d, sigma, n")
    assert mirror.wm(eta=0.1).name == "wm"


@pytest.mark.parametrize("model", [fj.mlp([8, 16, 16, 1]), fj.norm_mlp([8, 16, 16, 1], norm="layer")],
                         ids=["mlp", "norm_mlp"])
def test_sweeps_align_B_with_W(model):
    res = fj.sweep(model, TASK, rule="wm(eta=0.1; d=0.1)", seeds=2, steps=40, batch_size=16, eval_every=20,
                   progress=False, diagnostics=True)
    wa = res.diagnostics["weight_alignment_deg"]  # (seeds, evals, hidden)
    assert np.isfinite(res.loss).all() and (wa[:, -1] < 30).all(), wa
