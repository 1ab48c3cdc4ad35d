"""The model contract (fa_jax.models.contract): the built-in models satisfy it, hand-written models
with only its required members train under fj.sweep, and a broken model is a one-line error."""

import math

import chex
import jax
import jax.numpy as jnp
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.models import contract
from fa_jax.training import memory
from fa_jax.training import sweep as sweep_lib

TASK = fj.data.parity(6, 2)
KW = dict(seeds=2, steps=40, batch_size=16, eval_every=20, progress=False)

BUILT_IN = {
    "mlp": fj.mlp([6, 8, 1]),
    "norm_mlp layer+dropout": fj.norm_mlp([6, 8, 1], norm="layer", dropout=0.1),
    "norm_mlp batch": fj.norm_mlp([6, 8, 1], norm="batch"),
    "cnn sequential": fj.cnn.sequential((8, 8, 1), ["conv(2,3)", "relu", "maxpool(2)", "flatten", "dense(3)"]),
    **{f"cnn.get {name}": fj.cnn.get(name, (8, 8, 3), 4, **({"width": 2} if name == "resnet20" else {}))
       for name in fj.cnn.MODELS},
}


@pytest.mark.parametrize("model", BUILT_IN.values(), ids=BUILT_IN.keys())
def test_built_in_models_satisfy_the_contract(model, keys):
    assert isinstance(model, contract.Model) and isinstance(model, contract.LayeredModel)
    contract.check_model(model)
    params = model.init(keys(1)[0])
    assert contract.n_params(model) == sum(x.size for x in jax.tree.leaves(params)) == fj.cnn.n_params(params)
    assert len(contract.layers(model)) == len(contract.weight_shapes(model)) == len(params)
    assert len(contract.hidden_shapes(model)) == len(params) - 1
    assert math.prod(contract.input_shape(model)) == model.n_in
    x = jnp.ones((2, *contract.input_shape(model)))
    if contract.is_stateful(model):  # (logits, new_stats)
        assert isinstance(model, contract.StatefulModel)
        logits, stats = model.apply(params, x, stats=model.init_stats(), train=True)
        chex.assert_trees_all_equal_structs(stats, model.init_stats())
    else:
        logits = model.apply(params, x, train=True, key=jax.random.key(0))
    chex.assert_shape(logits, (2, model.n_out))
    assert contract.n_layers(model) == len(params) and all(u >= 1 for u in contract.units(model))


def test_defaults_and_n_params_by_hand():
    mlp = fj.mlp([6, 8, 3, 1])
    assert contract.n_params(mlp) == 6 * 8 + 8 + 8 * 3 + 3 + 3 + 1
    assert contract.units(mlp) == [8, 3, 1] and contract.input_shape(mlp) == (6,)
    assert not contract.is_stateful(mlp) and not contract.is_stochastic(mlp)
    assert contract.dense_sizes(mlp) == [6, 8, 3, 1]
    assert contract.dense_sizes(fj.cnn.image_mlp((2, 2, 1), 3, hidden=(4,))) is None  # NHWC input
    assert contract.is_stochastic(fj.norm_mlp([6, 8, 1], dropout=0.5))
    assert contract.units(Affine()) == [1] and contract.n_layers(Affine()) == 1


class Affine:
    """The required members only: ``init``, ``apply``, ``n_in``, ``n_out`` (a logistic regression).
    Its params are those of ``fj.mlp([6, 1])``, so its training must be that model's."""

    n_in, n_out = 6, 1

    def init(self, key):
        return fj.mlp([6, 1]).init(key)

    def apply(self, params, x, *, rule="bp", feedback=None):
        if rule != "bp":
            raise ValueError(f"Affine trains with bp only, got rule {rule!r}")
        return x @ params[0]["w"] + params[0]["b"]


class TanhNet:
    """Required members plus ``layers``, ``weight_shapes``, ``hidden_shapes``, written by hand:
    every rule wires it. Equal to ``fj.mlp([6, 8, 1], activation="tanh")``."""

    n_in, n_out = 6, 1
    weight_shapes = [(6, 8), (8, 1)]
    hidden_shapes = [(8,)]
    layers = [lambda p, h, op: jnp.tanh(op(h, p["w"], p["b"])), lambda p, h, op: op(h, p["w"], p["b"])]

    def init(self, key):
        return fj.mlp([6, 8, 1]).init(key)

    def apply(self, params, x, *, rule="bp", feedback=None):
        return fj.rules.get(rule).wire(self.layers, params, x, feedback)


def _same_run(a, b):
    chex.assert_trees_all_close(a.state.params, b.state.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close((a.loss, a.test_acc), (b.loss, b.test_acc), rtol=1e-5, atol=1e-6)


def test_a_model_with_only_the_required_members_trains_with_bp():
    assert isinstance(Affine(), contract.Model) and not isinstance(Affine(), contract.LayeredModel)
    _same_run(fj.sweep(Affine(), TASK, rule="bp", **KW), fj.sweep(fj.mlp([6, 1]), TASK, rule="bp", **KW))
    assert memory.estimate(Affine(), TASK, seeds=2).total > 0


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa"])
def test_a_hand_written_layered_model_trains_with_every_rule(rule):
    res = fj.sweep(TanhNet(), TASK, rule=rule, diagnostics=rule != "bp", **KW)
    ref = fj.sweep(fj.mlp([6, 8, 1], activation="tanh"), TASK, rule=rule, diagnostics=rule != "bp", **KW)
    _same_run(res, ref)
    chex.assert_trees_all_close(res.state.feedback, ref.state.feedback)
    if rule != "bp":
        chex.assert_trees_all_close(res.diagnostics, ref.diagnostics, rtol=1e-4, atol=1e-4)


class NoApply:
    n_in, n_out = 6, 1

    def init(self, key):
        return []


class Unhashable(Affine):
    __hash__ = None


class StatefulWithoutStats(Affine):
    stateful = True


class ZeroOutputs(Affine):
    n_out = 0


BROKEN = [
    ("no apply, no n_out", lambda: fj.sweep(type("Half", (), {"init": NoApply.init, "n_in": 6})(), TASK, **KW),
     "this model (Half) lacks apply(params, x, *, rule, feedback) -> logits, n_out (outputs): a model for fj.sweep "
     "needs init, apply, n_in, n_out (see fa_jax.models.contract)"),
    ("apply not a function", lambda: fj.sweep(type("B", (NoApply,), {"apply": 3})(), TASK, **KW),
     "model.apply must be a function (apply(params, x, *, rule, feedback) -> logits), got 3"),
    ("n_out 0", lambda: fj.sweep(ZeroOutputs(), TASK, **KW), "model.n_out must be a positive int, got 0"),
    ("unhashable", lambda: fj.sweep(Unhashable(), TASK, **KW),
     "this model (Unhashable) is not hashable: fj.sweep caches its compiled programs by model"),
    ("stateful without init_stats", lambda: fj.sweep(StatefulWithoutStats(), TASK, **KW),
     "this model (StatefulWithoutStats) has no init_stats() -> stats, which a stateful model (stateful=True) needs"),
    ("fa without weight_shapes", lambda: fj.sweep(Affine(), TASK, rule="fa", **KW),
     "this model (Affine) has no weight_shapes, which FA-family feedback needs (see fa_jax.models.contract)"),
    ("dfa without hidden_shapes", lambda: fj.sweep(Affine(), TASK, rule="dfa", **KW),
     "this model (Affine) has no hidden_shapes, which DFA-family feedback needs"),
    ("diagnostics without layers", lambda: fj.sweep(Affine(), TASK, diagnostics=True, **KW),
     "this model (Affine) has no layers, which diagnostics=True needs"),
    ("lazy rule on a hand-written net", lambda: fj.sweep(Affine(), TASK, rule="ntk", **KW),
     "rule 'ntk' needs a depth-two MLP [n_in, width, n_out] (one hidden layer), got Affine"),
]


@pytest.mark.parametrize("fn,match", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_model_is_a_one_line_error_before_compiling(fn, match, monkeypatch):
    def compile_nothing(*a, **k):
        raise AssertionError("a program was built for a broken model")

    monkeypatch.setattr(sweep_lib, "_programs", compile_nothing)
    one_line_error(fn, match)
