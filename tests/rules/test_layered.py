"""A rule's own trainable extras (``Rule.init_params``) and the block-by-block forward the local rules
build on (:mod:`fa_jax.rules.layered`): the model's own pass, its statistics, its recorded maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.rules import layered
from fa_jax.training.state import PURPOSE_RULE, init_state


def _with_head(key, model, params):
    """A head (h_1 -> n_out) on the first hidden layer: an extra the model's layers never read."""
    h1 = model.sizes[1]
    return [{**params[0], "head": {"w": jax.random.normal(key, (h1, model.n_out)) * 0.1,
                                   "b": jnp.zeros(model.n_out)}}, *params[1:]]


def _objective(model, params, batch, feedback, key):
    """The task loss through the model plus a head's loss on the first hidden layer's output."""

    def wire(layers, ps, h):
        hs = []
        for layer, p in zip(layers, ps):
            h = layer(p, h, fj.rules.linear)
            hs.append(h)
        return h, hs

    logits, _, hs = layered.batch_forward(model, params, batch, wire, key)
    head = params[0]["head"]
    aux = batch.loss(hs[0] @ head["w"] + head["b"], batch.y)
    return batch.loss(logits, batch.y) + aux, fj.rules.Aux(logits, metrics={"head_loss": aux})


HEADED = fj.Rule("headed", objective=_objective, init_params=_with_head, family="local")


def test_extras_are_drawn_per_seed_trained_and_ignored_by_the_model():
    model, task = fj.mlp([8, 6, 1]), fj.data.parity(8, 2)
    tx = fj.optimizer("adam", 1e-2)
    s0 = init_state(jax.random.key(3), model, HEADED, tx)
    want = _with_head(jax.random.fold_in(jax.random.key(3), PURPOSE_RULE), model, model.init(
        jax.random.fold_in(jax.random.key(3), 0)))
    np.testing.assert_array_equal(s0.params[0]["head"]["w"], want[0]["head"]["w"])
    x, y = task.sample(jax.random.key(0), 16)
    plain = [{k: v for k, v in p.items() if k != "head"} for p in s0.params]
    np.testing.assert_array_equal(model.apply(s0.params, x), model.apply(plain, x))  # the layers never read it
    res = fj.sweep(model, task, rule=HEADED, seeds=2, steps=20, batch_size=16, eval_every=10, lr=1e-2,
                   progress=False)
    assert res.state.params[0]["head"]["w"].shape == (2, 6, 1)  # vmapped over seeds
    for seed in range(2):  # each seed's head, drawn from its own key, moved: the optimizer trains it
        start = init_state(jax.random.key(seed), model, HEADED, tx).params[0]["head"]["w"]
        assert np.abs(res.state.params[0]["head"]["w"][seed] - start).max() > 1e-3
    assert np.isfinite(res.rule_metrics["head_loss"]).all()


@pytest.mark.parametrize("make", [
    lambda: fj.mlp([5, 7, 3]),
    lambda: fj.norm_mlp([5, 7, 3], norm="batch", dropout=0.2),
    lambda: fj.cnn.get("lecture_cnn", (8, 8, 1), 3, width=0.25),
])
def test_forward_is_the_models_own_pass_and_records_every_map(make):
    model = make()
    shape = (4, *fj.models.contract.input_shape(model))
    x = jax.random.normal(jax.random.key(1), shape)
    params = model.init(jax.random.key(0))
    stats = model.init_stats() if getattr(model, "stateful", False) else None
    kw = {"stats": stats} if stats is not None else {}
    key = jax.random.key(2)

    def wire(layers, ps, h):
        zs = []
        for layer, p in zip(layers, ps):
            op = layered.Shifted()
            h = layer(p, h, op)
            zs.append(op.z)
        return h, zs

    y, new_stats, zs = layered.forward(model, params, x, wire, key=key, **kw)
    mode = {"train": True, "key": key} if getattr(model, "stochastic", False) else {}
    ref = model.apply(params, x, **{**mode, **({"train": True, **kw} if stats is not None else {})})
    ref_y, ref_stats = ref if stats is not None else (ref, None)
    np.testing.assert_array_equal(y, ref_y)
    if stats is not None:
        jax.tree.map(np.testing.assert_array_equal, new_stats, ref_stats)
    assert [z.shape for z in zs] == layered.map_shapes(model, params, x)
    assert zs[-1].shape == y.shape  # the last map's output is the logits


def test_shifted_adds_its_shift_to_the_maps_output():
    op = layered.Shifted(jnp.ones((2, 3)))
    h, w, b = jnp.ones((2, 4)), jnp.full((4, 3), 0.5), jnp.arange(3.0)
    np.testing.assert_array_equal(op(h, w, b), h @ w + b + 1)
    np.testing.assert_array_equal(op.z, h @ w + b)


def test_refusals_are_one_line():
    class NoLayers:
        n_in, n_out = 2, 1

    one_line_error(lambda: layered.check_layered(NoLayers(), "local"), "needs a layered model")
    one_line_error(lambda: layered.check_map_params(fj.norm_mlp([4, 5, 2], norm="layer"), "node_pert",
                                                    "perturbs the weighted maps' outputs"), "would get no update")
    layered.check_map_params(fj.mlp([4, 5, 2]), "node_pert", "x")  # plain maps: nothing refused
