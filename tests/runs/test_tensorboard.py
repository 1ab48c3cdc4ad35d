"""TensorBoard event logs of a run directory: written from metrics.jsonl and config.json, read back
from the TFRecord files and compared with the rows; rewritten in place; optional tensorboardX."""

import json
import math
import os
import struct
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from error_check import one_line_error, one_line_exit
from repository import load_script

from fa_jax import plot
from fa_jax.errors import InputError
from fa_jax.runs import tensorboard as tb
from fa_jax.runs.study import check_resumable

Event = pytest.importorskip("tensorboardX.proto.event_pb2").Event
masked_crc32c = pytest.importorskip("tensorboardX.record_writer").masked_crc32c


def records(path):
    """The records of a TFRecord file (length, its masked CRC, data, its masked CRC), CRCs checked."""
    data, out, i = Path(path).read_bytes(), [], 0
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == masked_crc32c(header)
        body = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == masked_crc32c(body)
        out.append(body)
        i += 16 + n
    return out


def read_log(logdir):
    """{run: {"scalars": {tag: [(step, value), ...]}, "text": {tag: str}, "files": n}} of a log folder."""
    runs = defaultdict(lambda: {"scalars": defaultdict(list), "text": {}, "files": 0})
    for f in sorted(Path(logdir).rglob("events.out.tfevents.*")):
        run = runs[str(f.parent.relative_to(logdir))]
        run["files"] += 1
        for rec in records(f):
            ev = Event.FromString(rec)
            for v in ev.summary.value:
                if v.HasField("tensor"):
                    run["text"][v.tag] = v.tensor.string_val[0].decode()
                else:
                    run["scalars"][v.tag].append((ev.step, v.simple_value))
    return runs


def write_run(d, rows, config=None, tail=""):
    d.mkdir(exist_ok=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    if config is not None:
        (d / "config.json").write_text(json.dumps(config))
    return d


def row(rule, seed, step, acc, loss=0.5, **kw):
    return {"rule": rule, "seed": seed, "step": step, "diverged": False, "loss": loss, "test_acc": acc, **kw}


ROWS = [row(rule, seed, step, 0.5 + 0.1 * seed + step / 1000 + (rule == "fa") * 0.01, loss=1.0 / (step + seed + 1),
            grad_alignment_deg=[10.0 * seed + step, 20.0 + step], objective=0.25 * step)
        for rule in ("bp", "fa") for seed in (0, 1, 2) for step in (10, 20, 30)]


def test_events_match_metrics_rows(tmp_path):
    run = write_run(tmp_path / "r", ROWS, {"task": "parity(10, 2)", "seeds": 3})
    assert tb.write_events(run) == run / "tensorboard"
    log = read_log(run / "tensorboard")
    assert set(log) == {"config", *(f"rule={r}/{s}" for r in ("bp", "fa") for s in ("seed_0", "seed_1", "seed_2",
                                                                                       "mean"))}
    assert json.loads("\n".join(line[4:] for line in log["config"]["text"]["config/text_summary"].splitlines())) == \
        {"task": "parity(10, 2)", "seeds": 3}
    for r in ROWS:
        got = log[f"rule={r['rule']}/seed_{r['seed']}"]["scalars"]
        for tag, want in [("test_acc", r["test_acc"]), ("loss", r["loss"]), ("objective", r["objective"]),
                          ("grad_alignment_deg/layer_1", r["grad_alignment_deg"][0]),
                          ("grad_alignment_deg/layer_2", r["grad_alignment_deg"][1])]:
            assert dict(got[tag])[r["step"]] == pytest.approx(want, rel=1e-6), tag
    for rule in ("bp", "fa"):
        mean = log[f"rule={rule}/mean"]
        acc = dict(mean["scalars"]["test_acc"])
        for step in (10, 20, 30):
            want = np.mean([r["test_acc"] for r in ROWS if r["rule"] == rule and r["step"] == step])
            assert acc[step] == pytest.approx(want, rel=1e-6)
        assert [s for s, _ in mean["scalars"]["test_acc"]] == [10, 20, 30]
        assert mean["text"]["seeds/text_summary"] == f"rule={rule} (3 seeds)"
    assert (run / "tensorboard").stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_writing_again_replaces_the_log(tmp_path):
    run = write_run(tmp_path / "r", ROWS)
    tb.write_events(run)
    (run / "tensorboard" / "stale").mkdir()
    write_run(run, [r for r in ROWS if r["rule"] == "bp" and r["seed"] == 0])
    tb.write_events(run)
    log = read_log(run / "tensorboard")
    assert set(log) == {"rule=bp/seed_0", "rule=bp/mean"} and not (run / "tensorboard" / "stale").exists()
    assert all(run_["files"] == 1 for run_ in log.values())
    assert [s for s, _ in log["rule=bp/seed_0"]["scalars"]["test_acc"]] == [10, 20, 30]  # no step twice
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl", "tensorboard"]  # no temporary folder left


def test_diverged_seed_nan_torn_line_and_no_seed_axis(tmp_path):
    rows = [row("dfa", 0, 10, 0.6), row("dfa", 0, 20, 0.7),
            row("dfa", 1, 10, 0.8), {**row("dfa", 1, 20, None, loss=None), "diverged": True},
            row("dfa", 2, 10, 0.9), row("dfa", 2, 20, float("nan"))]
    run = write_run(tmp_path / "r", rows, tail='{"rule": "dfa", "seed": 2, "st')
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        tb.write_events(run)
    log = read_log(run / "tensorboard")
    assert log["rule=dfa/seed_1"]["scalars"]["test_acc"] == [(10, pytest.approx(0.8))]  # nothing after it diverged
    assert dict(log["rule=dfa/seed_2"]["scalars"]["test_acc"]) == {10: pytest.approx(0.9)}  # NaN left out
    mean = log["rule=dfa/mean"]
    assert dict(mean["scalars"]["test_acc"]) == {10: pytest.approx(0.75), 20: pytest.approx(0.7)}  # seeds 0, 2
    assert mean["text"]["seeds/text_summary"] == "rule=dfa (2 of 3 seeds; 1 diverged)"
    # rows with no labels and no seed: one run, the log folder itself
    run2 = write_run(tmp_path / "r2", [{"step": s, "test_acc": s / 100} for s in (1, 2, 3)])
    log2 = read_log(tb.write_events(run2))
    assert set(log2) == {"."} and log2["."]["scalars"]["test_acc"] == [(s, pytest.approx(s / 100)) for s in (1, 2, 3)]


def test_cells_with_several_labels_and_odd_characters(tmp_path):
    rows = [{"model": m, "rule": "fa", "seed": 0, "step": 5, "test_acc": a}
            for m, a in [("mlp/2", 0.1), ("mlp 2", 0.2), ("cnn", 0.3)]]
    log = read_log(tb.write_events(write_run(tmp_path / "r", rows)))
    assert {k: v["scalars"]["test_acc"][0][1] for k, v in log.items() if k.endswith("seed_0")} == \
        {"model=mlp_2,rule=fa/seed_0": pytest.approx(0.1), "model=mlp_2,rule=fa~2/seed_0": pytest.approx(0.2),
         "model=cnn,rule=fa/seed_0": pytest.approx(0.3)}


def test_damaged_or_unwritable_run_directory(tmp_path, monkeypatch):
    one_line_error(lambda: tb.write_events(tmp_path / "none"), "is not a run directory (no metrics.jsonl)", InputError)
    bad = write_run(tmp_path / "bad", [*ROWS[:2], {**ROWS[2], "loss": "x"}])
    one_line_error(lambda: tb.write_events(bad), f"{bad / 'metrics.jsonl'} line 3: loss is 'x', not a number",
                   InputError)
    empty = write_run(tmp_path / "empty", [])
    one_line_error(lambda: tb.write_events(empty), "has no rows", InputError)
    run = write_run(tmp_path / "ro", ROWS)
    tb.write_events(run)
    before = {p: p.read_bytes() for p in (run / "tensorboard").rglob("*") if p.is_file()}
    real = os.access
    monkeypatch.setattr(tb.os, "access", lambda p, m: Path(p) != run and real(p, m))  # as if read-only (even root)
    one_line_error(lambda: tb.write_events(run), f"cannot write {run / 'tensorboard'}: {str(run)!r} is not writable",
                   InputError)
    assert {p: p.read_bytes() for p in (run / "tensorboard").rglob("*") if p.is_file()} == before


def test_a_write_that_fails_midway_keeps_the_old_log(tmp_path, monkeypatch):
    run = write_run(tmp_path / "r", ROWS)
    tb.write_events(run)
    before = {p: p.read_bytes() for p in (run / "tensorboard").rglob("*") if p.is_file()}
    real = tb.require()

    class Full(real.EventsWriter):
        def write_event(self, event):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(tb, "require", lambda: type(real)(**{**vars(real), "EventsWriter": Full}))
    with pytest.raises(OSError, match="No space left"):
        tb.write_events(run)
    assert {p: p.read_bytes() for p in (run / "tensorboard").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl", "tensorboard"]


def test_without_tensorboardx_one_line_before_anything(tmp_path, monkeypatch, capsys):
    for name in ["tensorboardX", *(m for m in sys.modules if m.startswith("tensorboardX."))]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError
    one_line_error(lambda: tb.write_events(write_run(tmp_path / "r", ROWS)), "pip install 'fa_jax[tensorboard]'",
                   InputError)
    err = one_line_exit(capsys, plot.main, [str(tmp_path / "r"), "--tensorboard"])
    assert "pip install 'fa_jax[tensorboard]'" in err and not (tmp_path / "r" / "curves.png").exists()
    parity = load_script("experiments/parity.py", "parity_tb")
    err = one_line_exit(capsys, parity.main, ["--quick", "--tensorboard", "--out", str(tmp_path / "out")])
    assert "pip install 'fa_jax[tensorboard]'" in err and not (tmp_path / "out").exists()


def test_plot_cli_writes_the_log(tmp_path, capsys):
    run = write_run(tmp_path / "r", ROWS, {"task": "t"})
    assert plot.main([str(run), "--tensorboard"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{run / 'tensorboard'}")
    assert (run / "curves.png").is_file() and len(read_log(run / "tensorboard")) == 9


def test_a_resumed_run_may_turn_the_log_on(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"seeds": 2, "tensorboard": False}))
    check_resumable(tmp_path, {"seeds": 2, "tensorboard": True})  # no error: how the run reports may change


def test_script_flag_writes_the_log_at_the_end(tmp_path):
    parity = load_script("experiments/parity.py", "parity_tb_run")
    out = tmp_path / "run"
    assert parity.main(["--n", "6", "--k", "2", "--rules", "bp", "--seeds", "2", "--steps", "20", "--eval-every",
                        "10", "--width", "8", "--depth", "1", "--checkpoint-every", "0", "--no-progress",
                        "--tensorboard", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    log = read_log(out / "tensorboard")
    assert set(log) == {"config", "rule=bp/seed_0", "rule=bp/seed_1", "rule=bp/mean"}
    for r in rows:
        for tag in ("test_acc", "loss", "train_acc", "test_loss"):
            assert dict(log[f"rule=bp/seed_{r['seed']}"]["scalars"][tag])[r["step"]] == pytest.approx(r[tag], rel=1e-6)
    assert '"tensorboard": true' in log["config"]["text"]["config/text_summary"]
    assert (out / "summary.json").is_file() and math.isfinite(log["rule=bp/mean"]["scalars"]["loss"][-1][1])
