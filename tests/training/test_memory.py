"""fa_jax.training.memory: the estimate against hand counts and against XLA's own memory analysis."""

import math

import jax
import jax.numpy as jnp
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.training import memory
from fa_jax.training import sweep as train
from fa_jax.training.sweep_config import Program


def _params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


@pytest.mark.parametrize("optimizer,slots", [("sgd", 0), ("momentum", 1), ("adam", 2), ("amsgrad", 3)])
@pytest.mark.parametrize("rule", ["bp", "fa", "dfa"])
def test_state_is_counted_from_shapes(optimizer, slots, rule):
    """params + one params-sized buffer per optimizer slot + feedback, in float32 (plus scalars:
    the step counter, injected hyperparameters, the RNG key)."""
    sizes = [30, 64, 32, 1]
    model = fj.mlp(sizes)
    fb = {"bp": 0, "fa": _params(sizes) - sum(sizes[1:]), "dfa": 64 + 32}[rule]
    est = memory.estimate(model, fj.data.parity(30, 3), rule=rule, seeds=5, batch_size=16, optimizer=optimizer)
    assert est.params == 4 * _params(sizes)
    assert 0 <= est.state - 4 * ((1 + slots) * _params(sizes) + fb) <= 64
    assert est.seeds == 5 and est.total == 5 * est.per_seed + est.data


def test_activations_and_data():
    model, task = fj.mlp([30, 64, 32, 1]), fj.data.parity(30, 3, n_test=100, n_train=50)
    est = memory.estimate(model, task, seeds=1, batch_size=1000)  # training dominates: batch (n_in + 4 units)
    assert est.activations == 4 * 1000 * (30 + 4 * (64 + 32 + 1))
    est = memory.estimate(model, task, seeds=1, batch_size=1)  # evaluation: n_test x 2 x widest layer
    assert est.activations == 4 * 100 * 2 * 64
    assert est.data == 4 * (150 * 30 + 150) + 4 * 3  # x, y of both splits; the parity subset (3 int32)


@pytest.mark.parametrize("model,rule,seeds,batch", [
    (fj.mlp([30, 256, 256, 1]), "fa", 8, 64),     # state and test-set evaluation
    (fj.mlp([30, 512, 512, 1]), "dfa", 4, 1024),  # training activations
    (fj.cnn.get("lecture_cnn", (8, 8, 1), 10, width=0.5), "bp", 2, 32),
])
def test_estimate_within_2x_of_xla(model, rule, seeds, batch):
    """The estimate against XLA's memory analysis of the compiled chunk (arguments + outputs +
    temporaries): within a factor 2 either way."""
    task = fj.data.images("digits") if getattr(model, "input_shape", None) else fj.data.parity(30, 3)
    est = memory.estimate(model, task, rule=rule, seeds=seeds, batch_size=batch)
    program = Program(fj.rules.get(rule), task.default_loss, "adam", None, (), (), batch, 10, 1, False, None, 0.0)
    init, chunk = train._programs(model, program)
    keys = jax.vmap(jax.random.key)(jnp.arange(seeds, dtype=jnp.uint32))
    state = jax.eval_shape(init, keys, jax.eval_shape(train._param_program(model), keys), jnp.full((seeds,), 1e-3))
    ma = chunk.lower(state, task).compile().memory_analysis()
    if ma is None:
        pytest.skip("this backend reports no memory analysis")
    xla = ma.argument_size_in_bytes + ma.output_size_in_bytes + ma.temp_size_in_bytes - ma.alias_size_in_bytes
    assert 0.5 < est.total / xla < 2, (est, xla)


def test_limit_and_override(monkeypatch):
    limit, what = memory.device_limit()
    assert limit > 2 ** 28 and what
    monkeypatch.setenv("FA_JAX_MEMORY_LIMIT_GIB", "2")
    assert memory.device_limit() == (2 * memory.GiB, "FA_JAX_MEMORY_LIMIT_GIB")
    monkeypatch.setenv("FA_JAX_MEMORY_LIMIT_GIB", "inf")  # documented: no limit
    assert memory.device_limit() == (math.inf, "FA_JAX_MEMORY_LIMIT_GIB")
    monkeypatch.setenv("FA_JAX_MEMORY_LIMIT_GIB", "")  # empty: unset
    assert memory.device_limit() == (limit, what)


@pytest.mark.parametrize("value", ["0", "-2", "nan", "-inf", "lots", "2 GiB", "0x10"])
def test_bad_limit_variable_is_one_line(value, monkeypatch):
    model, task = fj.mlp([4, 8, 1]), fj.data.parity(4, 2)
    monkeypatch.setenv("FA_JAX_MEMORY_LIMIT_GIB", value)
    match = f"FA_JAX_MEMORY_LIMIT_GIB={value!r} must be a positive number of GiB (e.g. 40; inf: no limit)"
    one_line_error(memory.device_limit, match)
    one_line_error(lambda: fj.data.parity(4, 2), match)  # data generation checks its size too
    one_line_error(lambda: memory.check_sweep(model, task, seeds=2), match)  # not taken for broken arguments
    one_line_error(lambda: fj.sweep(model, task, seeds=2, steps=2, eval_every=1, progress=False), match)


def test_normal_configs_pass():
    """The README's main job is far below any machine's limit; broken arguments give None."""
    est = memory.check_sweep(fj.mlp([30, 256, 256, 1]), fj.data.parity(30, 3), rule="fa", seeds=8, steps=1500)
    assert est is not None and est.total < 2 ** 30
    assert memory.check_sweep(fj.mlp([30, 256, 1]), fj.data.parity(30, 3), rule="nope") is None  # sweep speaks
    assert math.isfinite(est.total)


def test_sharded_seeds_and_data_parallel_on_accelerators(monkeypatch):
    """On accelerators each device holds its share of the seeds (and of each batch with
    data_parallel); CPU devices share one RAM, so there the whole sweep counts."""
    model, task = fj.mlp([30, 64, 1]), fj.data.parity(30, 3, n_test=10)
    cpu = memory.estimate(model, task, seeds=8, batch_size=512)
    assert cpu.seeds == 8
    gpus = [type("Gpu", (), {"platform": "gpu"})() for _ in range(4)]
    est = memory.estimate(model, task, seeds=8, batch_size=512, devices=gpus)
    assert est.seeds == 2 and est.activations == cpu.activations
    est = memory.estimate(model, task, seeds=8, batch_size=512, devices=gpus, data_parallel=2)
    assert est.seeds == 4 and est.activations == 4 * 256 * (30 + 4 * 65)
