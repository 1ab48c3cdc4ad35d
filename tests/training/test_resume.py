"""Checkpoint and resume: a resumed sweep equals the uninterrupted one bit for bit, including
after a real SIGKILL of the main job; other configurations and corrupt checkpoints are handled."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from error_check import one_line_exit
from repository import ROOT, load_script

import fa_jax as fj
from fa_jax.training import checkpoint
from fa_jax.runs import rundir

TASK = fj.data.parity(8, 2)
MODEL = fj.mlp([8, 16, 16, 1])
KW = dict(seeds=3, steps=80, batch_size=16, eval_every=10, progress=False)


def _assert_identical(a, b):
    """Every metric array and every leaf of the final state (keys as raw data) bit for bit."""
    for f in ("loss", "train_acc", "test_loss", "test_acc", "diverged_at"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    la, lb = jax.tree.leaves(checkpoint.to_saveable(a.state)), jax.tree.leaves(checkpoint.to_saveable(b.state))
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert a.metric_rows() == b.metric_rows()


def _half(tmp_path, full_dir, step, name="b"):
    """A checkpoint folder holding only ``full_dir``'s checkpoint at ``step`` (a run stopped there)."""
    d = tmp_path / name
    shutil.copytree(full_dir / str(step), d / str(step))
    return d


@pytest.mark.parametrize("rule,extra", [
    ("dfa", {}),
    ("fa", {"lr": [1e-3, 3e-3, 1e-2], "diagnostics": True}),
    ("bp", {"early_stopping": 2, "optimizer": "sgd", "lr": 0.05}),
    ("kp(lam=0.99)", {}),  # evolving feedback, in the state
    ("wm", {}),  # evolving feedback and a noise key per step
    ("brsf", {}),  # magnitudes redrawn from the step's key
    ("local", {}),  # objective rules: trainable heads in the params
    ("ff", {}),  # label weights in the params, negative labels from the step's key
    ("fg(kind=activity)", {}),  # a random direction per step
    ("node_pert", {}),
])
def test_resumed_sweep_is_bit_identical(tmp_path, rule, extra):
    if "early_stopping" in extra:
        extra = {**extra, "val": (TASK.x_test[:64], TASK.y_test[:64])}
    full = fj.sweep(MODEL, TASK, rule=rule, checkpoint=tmp_path / "a", checkpoint_every=40, **KW, **extra)
    assert full.resumed_from == 0 and checkpoint.latest_step(tmp_path / "a") == 80
    resumed = fj.sweep(MODEL, TASK, rule=rule, checkpoint=_half(tmp_path, tmp_path / "a", 40), **KW, **extra)
    assert resumed.resumed_from == 40
    _assert_identical(full, resumed)
    plain = fj.sweep(MODEL, TASK, rule=rule, **KW, **extra)  # checkpointing changes nothing
    _assert_identical(full, plain)


def test_finished_sweep_restores_without_training(tmp_path):
    a = fj.sweep(MODEL, TASK, rule="dfa", checkpoint=tmp_path / "c", **KW)
    b = fj.sweep(MODEL, TASK, rule="dfa", checkpoint=tmp_path / "c", **KW)
    # nothing compiled or ran again: the times are the ones the first run saved with its checkpoint
    assert b.resumed_from == 80 and b.compile_s == pytest.approx(a.compile_s, abs=1e-6)
    assert 0 < b.run_s <= a.run_s  # saved before the last checkpoint was written
    _assert_identical(a, b)


def test_keeps_the_last_k(tmp_path):
    fj.sweep(MODEL, TASK, rule="bp", checkpoint=tmp_path / "k", checkpoint_every=20, keep_checkpoints=3, **KW)
    assert sorted(int(p.name) for p in (tmp_path / "k").iterdir() if p.name.isdigit()) == [40, 60, 80]


@pytest.mark.parametrize("change,match", [
    ({"rule": "fa"}, r"rule='dfa' \(checkpoint\) vs 'fa' \(this run\)"),
    ({"seeds": 4}, r"seeds=\[0, 1, 2\] \(checkpoint\) vs \[0, 1, 2, 3\]"),
    ({"model": fj.mlp([8, 32, 16, 1])}, r"model=.*16, 16.* \(checkpoint\) vs .*32, 16"),
    ({"lr": 3e-3}, r"lr="),
])
def test_checkpoint_of_another_config_is_refused(tmp_path, change, match):
    fj.sweep(MODEL, TASK, rule="dfa", checkpoint=tmp_path / "x", **KW)
    kw = {**KW, "rule": "dfa", "model": MODEL, **change}
    model = kw.pop("model")
    with pytest.raises(ValueError, match=match) as err:
        fj.sweep(model, TASK, checkpoint=tmp_path / "x", **kw)
    assert "\n" not in str(err.value) and "different configuration" in str(err.value)


def test_corrupt_and_half_written_checkpoints(tmp_path):
    full = fj.sweep(MODEL, TASK, rule="dfa", checkpoint=tmp_path / "a", checkpoint_every=40, **KW)
    d = _half(tmp_path, tmp_path / "a", 40)
    shutil.copytree(tmp_path / "a" / "80", d / "80")
    for f in (d / "80" / "state").rglob("*"):  # corrupt every array file of the newest checkpoint
        if f.is_file() and f.stat().st_size > 0 and "metadata" not in f.name:
            f.write_bytes(b"\0garbage" * 3)
    (d / "60.orbax-checkpoint-tmp-1234").mkdir()  # a save cut short by a kill: never listed
    with pytest.warns(UserWarning, match="step 80 .* unreadable"):
        resumed = fj.sweep(MODEL, TASK, rule="dfa", checkpoint=d, **KW)
    assert resumed.resumed_from == 40
    _assert_identical(full, resumed)


def test_bad_checkpoint_arguments():
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint"):
        fj.sweep(MODEL, TASK, checkpoint_every=40, **KW)
    with pytest.raises(ValueError, match="not a multiple of eval_every"):
        fj.sweep(MODEL, TASK, checkpoint="/tmp/unused", checkpoint_every=15, **KW)
    with pytest.raises(ValueError, match="keep_checkpoints must be a positive int"):
        fj.sweep(MODEL, TASK, checkpoint="/tmp/unused", keep_checkpoints=0, **KW)


def test_torn_metrics_line_is_dropped(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b"')
    with pytest.warns(UserWarning, match="torn last line"):
        assert rundir.read_jsonl(p) == [{"a": 1}, {"a": 2}]
    p.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        rundir.read_jsonl(p)


# --- the main job, killed for real and resumed ------------------------------------------------

JOB = ["--quick", "--rules", "bp,dfa", "--steps", "3000", "--eval-every", "50", "--checkpoint-every", "500",
       "--no-progress"]


def _job(*args, **kw):
    return subprocess.Popen([sys.executable, str(ROOT / "experiments" / "parity.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"}, **kw)


def _results(out):
    summary = json.loads((out / "summary.json").read_text())
    return summary["results"], rundir.read_jsonl(out / "metrics.jsonl")


def _wait(job, ckpts, after=None):
    deadline = time.time() + 300
    while (checkpoint.latest_step(ckpts) or -1) <= (after or -1) and job.poll() is None and time.time() < deadline:
        time.sleep(0.02)


def test_ctrl_c_then_sigkill_then_resume_equals_uninterrupted_run(tmp_path, capsys):
    straight = _job(*JOB, "--out", str(tmp_path / "straight"))  # runs while the other is stopped/resumed
    killed = _job(*JOB, "--out", str(tmp_path / "killed"))
    ckpts = tmp_path / "killed" / "checkpoints" / "bp"
    _wait(killed, ckpts)
    killed.send_signal(signal.SIGINT)  # Ctrl-C: the save in progress completes, one line, exit 130
    _, err = killed.communicate()
    assert killed.returncode == 130, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and f"--resume {tmp_path / 'killed'}" in err, err
    assert not (tmp_path / "killed" / "run.lock").exists() and not (tmp_path / "killed" / "summary.json").exists()

    parity = load_script("experiments/parity.py", "parity_refused")  # without --resume: refused, nothing touched
    assert "--resume" in one_line_exit(capsys, parity.main, [*JOB, "--out", str(tmp_path / "killed")])

    first = checkpoint.latest_step(ckpts)
    cut = _job("--resume", str(tmp_path / "killed"))  # resumed, then killed for real at its next checkpoint
    _wait(cut, ckpts, after=first)
    cut.send_signal(signal.SIGKILL)
    cut.communicate()
    assert cut.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (tmp_path / "killed" / "summary.json").exists()  # never looks complete

    resumed = _job("--resume", str(tmp_path / "killed"))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    out_s, err_s = straight.communicate(timeout=600)
    assert straight.returncode == 0, err_s

    env = json.loads((tmp_path / "killed" / "config.json").read_text())["environment"]
    assert env["versions"]["jax"] == jax.__version__ and env["device_kind"] and "XLA_FLAGS" in env
    rows_a, metrics_a = _results(tmp_path / "straight")  # also: two processes, same config -> same numbers
    rows_b, metrics_b = _results(tmp_path / "killed")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)
    assert metrics_a == metrics_b  # every row, bit for bit (JSON floats round-trip), none duplicated
    assert len(metrics_b) == len({(r["rule"], r["seed"], r["step"]) for r in metrics_b}) == 2 * 2 * 60
    for rule in ("bp", "dfa"):  # the final train states, every array
        a, b = (ocp.StandardCheckpointer().restore((tmp_path / d / "checkpoints" / rule / "3000" / "state").absolute())
                for d in ("straight", "killed"))
        la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
        assert len(la) == len(lb) > 5
        for x, y in zip(la, lb):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
