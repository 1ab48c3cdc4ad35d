"""The one rule interface (fa_jax.rules.rule): typed fields checked in one line, declared options, a rule
equal to its name, the surrogate identity, and the step taking ``jax.value_and_grad`` of the rule's
objective: an objective whose update is BP's gradient trains bit for bit as bp, its metrics reach the
sweep's rows and ``metrics.jsonl``, and a ``predict`` hook is what evaluation scores."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.rules.rule import Aux, Family, surrogate

TASK = fj.data.parity(6, 2)
MLP = fj.mlp([6, 8, 1])


def bp_objective(model, params, batch, feedback, key):
    """BP written as an objective: the surrogate of the loss with BP's own gradient as the update."""
    def loss(p):
        logits = model.apply(p, batch.x)
        return batch.loss(logits, batch.y), logits

    (value, logits), g = jax.value_and_grad(loss, has_aux=True)(params)
    norm = jnp.sqrt(sum(jnp.vdot(a, a) for a in jax.tree.leaves(g)))
    return surrogate(value, g, params), Aux(logits, metrics={"update_norm": norm})


BP_OBJECTIVE = fj.Rule("bp_objective", objective=bp_objective, doc="bp, as an objective")


# --- fields -------------------------------------------------------------------------------------------

def test_family_is_an_enum_that_equals_its_string():
    assert fj.RULES["fa"].family is Family.FA and fj.RULES["fa"].family == "fa"
    assert fj.Rule("x", fj.rules.bp, family="dfa", output=fj.rules.core.dfa_node).family is Family.DFA
    assert fj.Rule("x").family is Family.BP and fj.Rule("x", family=None).family is Family.BP
    assert {fj.rules.get(r).family for r in ["kp", "usf", "wm"]} == {Family.FA}
    assert {fj.rules.get(r).family for r in ["sdfa", "drtp"]} == {Family.DFA}
    assert fj.rules.get("pepita").family is Family.FORWARD and fj.rules.get("ntk").family is Family.LAZY


@pytest.mark.parametrize("make,match", [
    (lambda: fj.Rule("x", family="dfaa"), "Rule 'x': unknown family 'dfaa'; known: bp, fa, dfa"),
    (lambda: fj.Rule("x", objective=3), "Rule 'x': objective must be a function or None, got 3"),
    (lambda: fj.Rule(""), "Rule name must be a non-empty string, got ''"),
    (lambda: fj.Rule("x", options={"lr": [1, 2]}), "Rule option lr=[1, 2] must be hashable"),
    (lambda: fj.Rule("x", options=[("1a", 2)]), "Rule options are name=value pairs with identifier names"),
    (lambda: fj.Rule("x", family="dfa"), "Rule 'x': a DFA-family rule without its own wire needs an output node"),
])
def test_bad_fields_are_one_line_errors(make, match):
    one_line_error(make, match)


def test_spec_options_are_declared_with_the_factorys_defaults():
    kp = fj.rules.get("kp(lam=0.5)")
    assert kp.options == (("b0", "random"), ("lam", 0.5)) and kp.option("lam") == 0.5
    assert fj.RULES["kp"].options == (("b0", "random"), ("lam", 0.999))
    assert dict(fj.rules.get("pepita(last=standard)").options) == {"f_scale": 0.05, "last": "standard",
                                                                   "output": "auto"}
    assert fj.RULES["bp"].options == ()
    with pytest.raises(KeyError, match="rule 'kp' has no option 'eta'"):
        fj.RULES["kp"].option("eta")
    one_line_error(lambda: fj.rules.get("kp(eta=1)"), "rule 'kp' has no option 'eta'; its options: lam, b0")


def test_a_rule_equals_its_name_resolves_to_itself_and_prints_as_its_name():
    dfa = fj.rules.get("dfa")
    assert dfa == "dfa" and "dfa" == dfa and dfa != "fa" and hash(dfa) == hash("dfa")
    assert fj.rules.get(dfa) is dfa and fj.rules.get(BP_OBJECTIVE) is BP_OBJECTIVE
    assert str(fj.rules.get("kp(lam=0.5)")) == "kp(lam=0.5)"
    assert repr(fj.rules.get("kp(lam=0.5)")) == "Rule('kp(lam=0.5)', family=fa, options: b0='random', lam=0.5)"
    assert BP_OBJECTIVE != fj.RULES["bp"]  # same forward, another rule


def test_layerwise_rules_are_those_the_op_point_and_output_describe():
    for name in ["bp", "fa", "dfa", "usf", "kp", "sdfa", "drtp", "dfa(conv=shared)"]:
        assert fj.rules.get(name).layerwise, name
    for name in ["pepita", "ntk", "rf_relu"]:
        assert not fj.rules.get(name).layerwise, name
    assert BP_OBJECTIVE.layerwise  # no wire: the plain chain
    assert not fj.Rule("mirror", fj.rules.fa_family(lambda w, B: w)).layerwise  # its own wire, family bp
    assert fj.Rule("again_fa", fj.rules.fa, family="fa").layerwise


# --- the surrogate and the step -------------------------------------------------------------------------

def test_surrogate_has_the_loss_as_value_and_the_update_as_gradient_exactly(x64, keys):
    k1, k2 = keys(2)
    params = MLP.init(k1, jnp.float64)
    update = jax.tree.map(lambda p: jax.random.normal(k2, p.shape, p.dtype), params)
    loss = jnp.asarray(0.123456789, jnp.float64)
    value, g = jax.value_and_grad(lambda p: surrogate(loss * 1.0, update, p))(params)
    assert value == loss
    chex.assert_trees_all_equal(g, update)


def test_an_objective_whose_update_is_bps_gradient_trains_bit_for_bit_as_bp():
    plain = fj.Rule("bp_objective_plain", doc="bp, as an objective without metrics",
                    objective=lambda *a: (lambda v, aux: (v, aux._replace(metrics={})))(*bp_objective(*a)))
    kw = dict(seeds=2, steps=20, eval_every=10, batch_size=16, progress=False)
    refs = {}
    for model in [MLP, fj.norm_mlp([6, 8, 1], norm="layer")]:
        ref = refs.setdefault(model, fj.sweep(model, TASK, rule="bp", **kw))
        res = fj.sweep(model, TASK, rule=plain, **kw)
        for k in ("loss", "train_acc", "test_loss", "test_acc"):
            np.testing.assert_array_equal(getattr(res, k), getattr(ref, k))
        chex.assert_trees_all_equal(res.state.params, ref.state.params)
    # with a metric the program differs (XLA may then fuse, and round, one operation otherwise)
    res, ref = fj.sweep(MLP, TASK, rule=BP_OBJECTIVE, **kw), refs[MLP]
    np.testing.assert_allclose(res.loss, ref.loss, rtol=1e-5)
    assert res.rule == "bp_objective" and ref.rule_metrics is None
    assert res.rule_metrics["update_norm"].shape == (2, 2) and np.all(res.rule_metrics["update_norm"] > 0)


def test_the_rules_metrics_reach_metrics_jsonl_per_seed(tmp_path):
    study = fj.Study.start(tmp_path / "run", {"note": "objective metrics"}, checkpoint_every=0, progress=False)
    study.sweep({"rule": "bp_objective"}, MLP, TASK, rule=BP_OBJECTIVE, seeds=2, steps=20, eval_every=10)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["seed"], r["step"]) for r in rows] == [(0, 10), (0, 20), (1, 10), (1, 20)]
    assert all(r["update_norm"] > 0 for r in rows)


def test_a_rule_metric_named_like_a_sweep_metric_is_refused():
    def objective(model, params, batch, feedback, key):
        value, aux = fj.RULES["bp"].train_objective(model, params, batch, feedback, key)
        return value, aux._replace(metrics={"test_acc": value})

    one_line_error(lambda: fj.sweep(MLP, TASK, rule=fj.Rule("clash", objective=objective), seeds=1, steps=10,
                                    eval_every=10, progress=False),
                   "rule 'clash' reports a metric named 'test_acc', which the sweep records itself")


def test_the_predict_hook_is_what_evaluation_scores():
    def predict(model, params, x, feedback):
        return jnp.ones((x.shape[0], 1), x.dtype)  # always class +1

    rule = fj.Rule("always_plus", predict=predict)
    res = fj.sweep(MLP, TASK, rule=rule, seeds=1, steps=10, eval_every=10, progress=False)
    assert res.test_acc[0, 0] == pytest.approx(float(np.mean(np.asarray(TASK.y_test) > 0)))


def test_a_rule_object_not_in_the_registry_runs_and_is_recorded_by_name(tmp_path):
    res = fj.sweep(MLP, TASK, rule=BP_OBJECTIVE, seeds=1, steps=10, eval_every=10, progress=False,
                   checkpoint=tmp_path / "ckpt")
    assert res.rows()[0]["rule"] == "bp_objective"
    again = fj.sweep(MLP, TASK, rule=BP_OBJECTIVE, seeds=1, steps=10, eval_every=10, progress=False,
                     checkpoint=tmp_path / "ckpt")
    assert again.resumed_from == 10
    np.testing.assert_array_equal(again.test_acc, res.test_acc)


def test_sweep_config_is_the_compile_key_and_the_fingerprint():
    a = fj.SweepConfig.build(MLP, TASK, rule="kp(lam=0.5)", seeds=2, lr=1e-3)
    b = fj.SweepConfig.build(MLP, TASK, rule="kp(lam=0.5)", seeds=[0, 1], lr=[2e-3, 3e-3])
    assert a.rule is b.rule and a.program == b.program and hash(a.program) == hash(b.program)
    assert a != b and a.fingerprint(MLP, TASK)["lr"] == [0.001, 0.001]
    assert fj.SweepConfig.build(MLP, TASK, rule="kp(lam=0.6)").program != a.program
    one_line_error(lambda: fj.SweepConfig.build(MLP, TASK, steps=150, eval_every=100),
                   "steps=150 is not a multiple of eval_every=100")


def test_study_plan_checks_every_cell_before_anything_is_written(tmp_path):
    cells = [{"model": MLP, "task": TASK, "rule": r} for r in ["bp", "dfa"]]
    configs = fj.Study.plan(cells, seeds=2, steps=100, eval_every=50)
    assert [c.rule.name for c in configs] == ["bp", "dfa"]
    one_line_error(lambda: fj.Study.plan(cells + [{"model": fj.mlp([6, 8, 8, 1]), "task": TASK, "rule": "ntk"}], seeds=2),
                   "rule 'ntk' needs a depth-two MLP")
    assert not (tmp_path / "run").exists()


def test_diagnostics_measure_an_objective_rules_own_update(x64, keys):
    k1, k2 = keys(2)
    model = fj.mlp([6, 8, 8, 1], activation="tanh")
    params = model.init(k1, jnp.float64)
    x, y = TASK.sample(k2, 32)
    x = x.astype(jnp.float64)
    same = fj.diagnostics.diagnose(model, BP_OBJECTIVE, fj.losses.bce, params, None, x, y)
    np.testing.assert_allclose(same["grad_alignment_deg"], 0.0, atol=1e-5)
    assert "signal_alignment_deg" not in same and "weight_alignment_deg" not in same

    def half_then_sign(model, params, batch, feedback, key):  # BP's gradient, the first layer's signs only
        value, aux = BP_OBJECTIVE.objective(model, params, batch, feedback, key)
        g = jax.grad(lambda p: batch.loss(model.apply(p, batch.x), batch.y))(params)
        g = [jax.tree.map(jnp.sign, g[0])] + list(g[1:])
        return surrogate(value, g, params), aux

    other = fj.diagnostics.diagnose(model, fj.Rule("signs", objective=half_then_sign), fj.losses.bce, params, None,
                                    x, y)
    assert other["grad_alignment_deg"][0] > 1.0
    np.testing.assert_allclose(other["grad_alignment_deg"][1:], 0.0, atol=1e-5)
    res = fj.sweep(MLP, TASK, rule=BP_OBJECTIVE, seeds=1, steps=10, eval_every=10, diagnostics=True, progress=False)
    assert res.diagnostics["grad_alignment_deg"].shape == (1, 1, 2)


def test_an_objective_is_checked_on_shapes_before_anything_runs(tmp_path):
    def objective(metrics, stats=False):
        def fn(model, params, batch, feedback, key):
            value, aux = fj.RULES["bp"].train_objective(model, params, batch, feedback, key)
            return value, Aux(aux.logits, aux.stats if stats else None, metrics(value))
        return fn

    for metrics, match in [(lambda v: {"test_acc": v}, "rule 'x' reports a metric named 'test_acc', which the sweep"),
                           (lambda v: {"energy": jnp.stack([v, v])}, "rule 'x': metric 'energy' must be a scalar")]:
        one_line_error(lambda: fj.Study.plan([{"model": MLP, "task": TASK, "rule": fj.Rule("x", objective=objective(
            metrics))}], seeds=1, steps=10, eval_every=10), match)
    bn = fj.norm_mlp([6, 8, 1], norm="batch")
    one_line_error(lambda: fj.SweepConfig.build(bn, TASK, rule=fj.Rule("x", objective=objective(lambda v: {}))),
                   "rule 'x': the model has running statistics (batch norm), which its objective must return")
    fj.SweepConfig.build(bn, TASK, rule=fj.Rule("x", objective=objective(lambda v: {}, stats=True)))


def test_a_family_rules_hooks_act_alike_on_every_model(x64, keys):
    k1, k2, k3 = keys(3)
    model = fj.mlp([6, 8, 8, 1], activation="tanh")
    params = model.init(k1, jnp.float64)
    x, y = TASK.sample(k2, 16)
    fb = fj.init_feedback(k3, model, "fa", dtype=jnp.float64)
    half = dataclasses.replace(fj.RULES["fa"], name="fa_half", backward=lambda w, B: 0.5 * B)
    grad = lambda r: jax.grad(lambda p: fj.losses.bce(model.apply(p, x.astype(jnp.float64), rule=r, feedback=fb),
                                                       y))(params)
    g_fa, g_half = grad("fa"), grad(half)
    # the backward hook is used: each B halved halves the signal once per layer it crosses
    for layer, factor in enumerate([0.25, 0.5, 1.0]):
        chex.assert_trees_all_close(g_half[layer], jax.tree.map(lambda g: factor * g, g_fa[layer]), rtol=1e-12)


def test_a_rule_of_another_kind_under_a_registered_name_does_not_resume_its_checkpoint(tmp_path):
    kw = dict(seeds=1, steps=10, eval_every=10, progress=False, checkpoint=tmp_path / "ckpt")
    fj.sweep(MLP, TASK, rule="bp", **kw)
    impostor = fj.Rule("bp", objective=bp_objective)
    one_line_error(lambda: fj.sweep(MLP, TASK, rule=impostor, **kw), "rule")
    assert fj.SweepConfig.build(MLP, TASK, rule="kp(lam=0.5)").fingerprint(MLP, TASK)["rule"] == "kp(lam=0.5)"
