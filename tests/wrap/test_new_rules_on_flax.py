"""Rules defined here, outside the library, on a wrapped linen MLP (float64): a new FA-family backward, a
new DFA-family output node and a rule defined by its objective each give the wrapped model exactly the
update they give the built-in fj.mlp with the same weights and feedback, with nothing in fa_jax/wrap/
naming them; a rule with its own layer wiring is refused there in one line."""

import chex
import jax
import jax.numpy as jnp
from error_check import one_line_error
from linen_nets import MLP, SIZES, builtin_mlp, feedback_to_linen, params_to_linen, params_to_list, vectors, wrap

import fa_jax as fj

F64 = jnp.float64
TOL = dict(rtol=1e-10, atol=1e-12)

# an FA-family rule: half the fixed feedback plus a tenth of the forward weight
HALF_FA = fj.rules.fa_rule("half_fa", lambda w, B: 0.5 * B + 0.1 * w, "test: B_used = B/2 + W/10")


@jax.custom_vjp
def _cubed_error(y, hs, Bs):
    return y


def _cubed_fwd(y, hs, Bs):
    return y, (hs, Bs)


def _cubed_bwd(res, e):
    hs, Bs = res
    return e, fj.rules.direct_signals(e ** 3, hs, Bs), [jnp.zeros_like(B) for B in Bs]


_cubed_error.defvjp(_cubed_fwd, _cubed_bwd)
# a DFA-family rule with its own output node: h_l receives (e ** 3) @ B_l
CUBED_DFA = fj.Rule("cubed_dfa", feedback_shapes=fj.RULES["dfa"].feedback_shapes, family="dfa",
                    output=lambda y, hs, fb, targets=None: _cubed_error(y, hs, list(fb)))


def _sign_objective(model, params, batch, feedback, key):
    """signSGD written as an objective: the update is sign(BP's gradient)."""
    def loss(p):
        logits = model.apply(p, batch.x)
        return batch.loss(logits, batch.y), logits

    (value, logits), g = jax.value_and_grad(loss, has_aux=True)(params)
    return fj.rules.surrogate(value, jax.tree.map(jnp.sign, g), params), fj.rules.Aux(logits)


SIGN_SGD = fj.Rule("sign_sgd", objective=_sign_objective, family="local")


def _pair(key):
    builtin = builtin_mlp()
    model = wrap(MLP(), (SIZES[0],))
    blist = builtin.init(key, F64)
    return builtin, model, blist, params_to_linen(model, blist)


def _objective_grads(model, rule, params, fb, x, y, key):
    batch = fj.rules.Batch(x, y, fj.losses.softmax_ce)
    return jax.grad(lambda p: rule.train_objective(model, p, batch, fb, key)[0])(params)


def test_new_wiring_rules_equal_the_builtin_on_a_wrapped_model(x64, keys):
    k1, k2, k3 = keys(3)
    builtin, model, blist, lparams = _pair(k1)
    x, y = vectors(k2)
    for rule in (HALF_FA, CUBED_DFA):
        assert rule.layerwise
        fbl = fj.init_feedback(k3, builtin, rule, dtype=F64)
        fb = feedback_to_linen(model, rule, fbl)
        g_b = _objective_grads(builtin, rule, blist, fbl, x, y, k3)
        g_l = params_to_list(model, _objective_grads(model, rule, lparams, fb, x, y, k3), blist)
        chex.assert_trees_all_close(g_l, g_b, **TOL)
        g_bp = _objective_grads(builtin, fj.RULES["bp"], blist, None, x, y, k3)
        assert not jnp.allclose(g_b[0]["w"], g_bp[0]["w"]), rule.name  # not BP in disguise


def test_an_objective_rule_gives_the_wrapped_model_the_builtins_update(x64, keys):
    k1, k2, k3 = keys(3)
    builtin, model, blist, lparams = _pair(k1)
    x, y = vectors(k2)
    g_b = _objective_grads(builtin, SIGN_SGD, blist, None, x, y, k3)
    g_l = params_to_list(model, _objective_grads(model, SIGN_SGD, lparams, None, x, y, k3), blist)
    chex.assert_trees_all_close(g_l, g_b, **TOL)
    assert set(jnp.unique(jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(g_b)])).tolist()) <= {-1.0, 0.0, 1.0}


def test_new_rules_train_a_wrapped_model_through_sweep():
    task = fj.data.parity(6, 2)
    model = fj.from_flax(MLP(sizes=(6, 8, 1), param_dtype="float32"), (6,))
    for rule in (HALF_FA, CUBED_DFA, SIGN_SGD):
        res = fj.sweep(model, task, rule=rule, seeds=2, steps=4, eval_every=2, batch_size=8, progress=False)
        assert res.rule == rule.name and not res.diverged.any() and res.test_acc.shape == (2, 2)


def test_a_rule_with_its_own_layer_wiring_is_refused_on_a_wrapped_model(x64, keys):
    model = wrap(MLP(), (SIZES[0],))
    mine = fj.Rule("mine", fj.rules.fa_family(lambda w, B: jnp.sign(w)))  # its own wire, family bp
    params = model.init(keys(1)[0])
    one_line_error(lambda: model.apply(params, jnp.zeros((2, SIZES[0]), F64), rule=mine),
                   "rule 'mine' does not run on a wrapped Flax model: its own wire(layers, ...) needs")
