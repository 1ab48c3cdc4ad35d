"""Sharded sweeps on 8 fake CPU devices equal the unsharded sweep, with the seed axis sharded and
with data parallelism within a seed (run in a subprocess); the multi-process helpers' checks
(the real multi-process runs are tests/runs/test_two_processes.py)."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

CODE = textwrap.dedent("""
    import jax, numpy as np, fa_jax as fj
    assert jax.device_count() == 8, jax.devices()
    task, model = fj.data.parity(8, 2), fj.mlp([8, 16, 1])
    kw = dict(steps=40, batch_size=8, eval_every=20, progress=False, rule="dfa")
    sharded = fj.sweep(model, task, seeds=8, **kw)
    w = sharded.state.params[0]["w"]
    assert len(w.sharding.device_set) == 8, w.sharding
    one = fj.sweep(model, task, seeds=8, devices=jax.devices()[:1], **kw)
    assert len(one.state.params[0]["w"].sharding.device_set) == 1
    np.testing.assert_allclose(sharded.loss, one.loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sharded.test_acc, one.test_acc, rtol=1e-5, atol=1e-6)
    six = fj.sweep(model, task, seeds=6, **kw)  # 6 seeds: largest divisor of 6 among 8 devices = 6
    assert len(six.state.params[0]["w"].sharding.device_set) == 6
    np.testing.assert_allclose(six.loss, one.loss[:6], rtol=1e-5, atol=1e-6)

    import tempfile  # a sharded sweep's checkpoint is restored onto the same 8-device mesh
    with tempfile.TemporaryDirectory() as d:
        saved = fj.sweep(model, task, seeds=8, checkpoint=d, **kw)
        again = fj.sweep(model, task, seeds=8, checkpoint=d, **kw)
    assert again.resumed_from == 40 and len(again.state.params[0]["w"].sharding.device_set) == 8
    np.testing.assert_array_equal(np.asarray(again.state.params[0]["w"]), np.asarray(saved.state.params[0]["w"]))
    np.testing.assert_array_equal(again.loss, saved.loss)

    # data parallel within a seed: 2 seed groups x 4 devices, each batch split over 4 devices
    deep, kw16 = fj.mlp([8, 32, 32, 1]), {**kw, "batch_size": 16}
    alone = fj.sweep(deep, task, seeds=2, devices=jax.devices()[:1], **kw16)
    dp = fj.sweep(deep, task, seeds=2, data_parallel=4, **kw16)
    assert dict(dp.state.params[0]["w"].sharding.mesh.shape) == {"seeds": 2, "data": 4}
    np.testing.assert_allclose(dp.loss, alone.loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dp.test_acc, alone.test_acc, rtol=1e-5, atol=1e-6)
    from fa_jax.training import sharding
    from fa_jax.training import sweep as train  # the compiled step really splits the batch: gradients are all-reduced
    from fa_jax.training.sweep_config import Program
    mesh = sharding.sweep_mesh(2, jax.devices(), 4)
    keys = jax.vmap(jax.random.key)(np.arange(2, dtype=np.uint32))
    counts = []
    for m in (mesh, None):
        program = Program(fj.rules.get("dfa"), "bce", "adam", None, (), (), 16, 20, 1, False, None, 0.0)
        init, chunk = train._programs(deep, program, m)
        params = train._param_program(deep)(keys)
        st, tk = sharding.place(init(keys, params, np.full(2, 1e-3, np.float32)), task, mesh)
        counts.append(chunk.lower(st, tk).compile().as_text().count("all-reduce"))
    assert counts[0] > 0 and counts[1] == 0, counts
    for bad, msg in (({"data_parallel": 3}, "batch_size=16 does not split over data_parallel=3"),
                     ({"data_parallel": 16}, "data_parallel=16 needs at least that many devices")):
        try:
            fj.sweep(deep, task, seeds=2, **bad, **kw16)
            raise AssertionError(bad)
        except ValueError as err:
            assert msg in str(err), err
    print("OK")
""")


def test_sharded_sweep_equals_unsharded():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env = {**os.environ, "XLA_FLAGS": flags.strip(), "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0 and "OK" in p.stdout, p.stderr[-3000:]


def test_local_seeds_round_robin_and_merge(tmp_path):
    import fa_jax as fj
    from fa_jax.runs import study
    from fa_jax.runs import rundir

    seeds = list(range(5))
    parts = [fj.sharding.local_seeds(seeds, i, 2) for i in range(2)]
    assert parts == [[0, 2, 4], [1, 3]]
    assert fj.sharding.local_seeds(seeds) == seeds  # single process
    with pytest.raises(ValueError, match="2 seeds cannot be spread over 3 processes"):
        fj.sharding.local_seeds([0, 1], 0, 3)
    for i, part in enumerate(parts):  # what each host writes
        rundir.write_json(tmp_path / f"summary_rows.p{i}.json",
                          [{"rule": r, "seed": s} for r in ("bp", "dfa") for s in part])
        rundir.append_jsonl(tmp_path / f"metrics.p{i}.jsonl",
                            [{"rule": r, "seed": s, "step": t} for r in ("bp", "dfa") for s in part for t in (20, 10)])
    rows, metric_rows = study.merge_shards(tmp_path, 2)
    assert [(r["rule"], r["seed"]) for r in rows] == [("bp", s) for s in seeds] + [("dfa", s) for s in seeds]
    merged = rundir.read_jsonl(tmp_path / "metrics.jsonl")
    assert merged == metric_rows and len(merged) == 20
    assert [(m["seed"], m["step"]) for m in merged[:4]] == [(0, 10), (0, 20), (1, 10), (1, 20)]


ADDRESS = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1"}  # never reached: every row fails before connecting


@pytest.mark.parametrize("env, message", [
    (ADDRESS, "JAX_COORDINATOR_ADDRESS='127.0.0.1:1' needs integer JAX_NUM_PROCESSES and JAX_PROCESS_ID, "
              "got None and None"),
    ({**ADDRESS, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "one"}, "got '2' and 'one'"),
    ({**ADDRESS, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"},
     "JAX_PROCESS_ID must be in 0..1 (JAX_NUM_PROCESSES=2), got 2"),
    ({**ADDRESS, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0", "FA_JAX_DISTRIBUTED_TIMEOUT": "1"},
     "FA_JAX_DISTRIBUTED_TIMEOUT must be a number of seconds > 2, got '1'"),
    ({**ADDRESS, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0", "FA_JAX_DISTRIBUTED_TIMEOUT": "soon"}, "got 'soon'"),
    ({**ADDRESS, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0", "FA_JAX_DISTRIBUTED_TIMEOUT": "inf"}, "got 'inf'"),
])
def test_bad_launch_variables_are_one_line_errors(monkeypatch, env, message):
    import fa_jax as fj
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=re.escape(message)):
        fj.sharding.maybe_initialize_distributed()


def test_single_process_needs_no_distributed_setup(monkeypatch):
    import fa_jax as fj
    for k in ("JAX_COORDINATOR_ADDRESS", "SLURM_NTASKS", "FA_JAX_DISTRIBUTED_TIMEOUT"):
        monkeypatch.delenv(k, raising=False)
    assert fj.sharding.maybe_initialize_distributed() is False
    assert fj.sharding.distributed_timeout() == 60.0
    fj.sharding.sync_processes("nothing to wait for")  # returns at once
    monkeypatch.setenv("FA_JAX_DISTRIBUTED_TIMEOUT", "7.5")
    assert fj.sharding.distributed_timeout() == 7.5


def test_multi_process_runs_do_not_checkpoint(monkeypatch, tmp_path):
    """orbax saves global arrays together; each process's sweep holds its own seeds, so a
    multi-process study checkpoints nothing by default and refuses an explicit interval."""
    import jax

    from fa_jax.runs import rundir
    from fa_jax.training import checkpoint

    assert rundir.checkpointing(tmp_path, "bp")["checkpoint"] == (tmp_path / "checkpoints" / "bp").absolute()
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    assert rundir.checkpointing(tmp_path, "bp.p0") == {}
    kw = rundir.checkpointing(tmp_path, "bp.p0", every=100)
    with pytest.raises(ValueError, match=r"cannot checkpoint '.*bp.p0' in a multi-process run \(process 0 of 2\)"):
        checkpoint.Checkpointer(kw["checkpoint"], {})
