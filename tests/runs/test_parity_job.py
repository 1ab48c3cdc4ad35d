"""The main job end to end (--quick) and its command-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from repository import ROOT, load_script

SCRIPT = ROOT / "experiments" / "parity.py"
parity_job = load_script(SCRIPT, "parity_job")


def _run(*args, **kw):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=600, **kw)


def test_quick_job_writes_a_complete_run_directory(tmp_path):
    out = tmp_path / "run"
    p = _run("--quick", "--out", str(out), "--no-progress")
    assert p.returncode == 0, p.stderr
    for f in ("config.json", "metrics.jsonl", "summary.json", "curves.png"):
        assert (out / f).exists(), f
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["results"]
    assert {r["rule"] for r in rows} == {"bp", "fa", "dfa"}
    for r in rows:
        assert set(r) >= {"rule", "seed", "test_accuracy", "final_loss", "steps", "diverged", "wall_s"}
    bp = [r for r in rows if r["rule"] == "bp"]
    assert all(r["test_accuracy"] >= 0.95 for r in bp), bp  # BP solves n=10, k=2
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["n"] == 10 and cfg["k"] == 2 and cfg["model"]["sizes"] == [10, 64, 64, 1]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"rule", "seed", "step", "loss", "train_acc", "test_acc"} <= set(metrics[0])
    assert len(metrics) == 3 * 2 * 8  # rules x seeds x logged steps
    assert "| bp |" in p.stdout and (out / "curves.png").stat().st_size > 10_000


@pytest.mark.parametrize("args,match", [
    (["--rules", "bp,dfaa"], "unknown rule 'dfaa'; known: bp, "),
    (["--k", "40", "--n", "30"], "k=40 > n=30"),
    (["--width", "0"], "--width must be >= 1, got 0"),
    (["--optimizer", "adamm"], "unknown optimizer 'adamm'"),
    (["--init", "xavier"], "unknown init 'xavier'"),
    (["--activation", "swish"], "unknown activation 'swish'"),
    (["--loss", "xent"], "unknown loss 'xent'"),
    (["--lr", "-1"], "learning rate must be positive"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--steps", "150", "--eval-every", "100"], "not a multiple"),
    (["--feedback-dist", "cauchy"], "unknown feedback dist"),
    (["--n", "abc"], "invalid int value: 'abc'"),
    (["--data-parallel", "3"], "--batch-size 64 does not split over --data-parallel 3"),
    (["--data-parallel", "64"], "--data-parallel 64 needs 64 devices"),
    (["--checkpoint-every", "150"], "--checkpoint-every 150 is not a multiple of --eval-every 100"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0"),
    (["--keep-checkpoints", "0"], "--keep-checkpoints must be >= 1, got 0"),
    (["--resume", "/nonexistent/run"], "--resume '/nonexistent/run': cannot use /nonexistent/run/config.json"),
])
def test_bad_input_is_one_line_exit_2(args, match, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        parity_job.main([*args, "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert match in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "never").exists()


def test_bad_input_in_a_subprocess_has_no_traceback():
    p = _run("--rules", "bp,dfaa")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    err = p.stderr.strip()  # one line listing every registered rule (the lazy ones included)
    assert "\n" not in err and err.startswith("parity.py: error: argument --rules: unknown rule 'dfaa'; known: bp, ")
    assert ", dfa, " in err and ", fa, " in err


def test_unwritable_out(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    target = ro / "x" if not os.access(ro, os.W_OK) else Path("/sys/fa_jax_run")  # root writes anywhere
    try:
        with pytest.raises(SystemExit) as exit_:
            parity_job.main(["--quick", "--out", str(target)])
        assert exit_.value.code == 2 and "is not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as exit_:
        parity_job.main(["--quick", "--out", str(f)])
    assert exit_.value.code == 2 and "exists and is not a directory" in capsys.readouterr().err


def test_quick_job_takes_every_rule_family(tmp_path):
    """The sign-concordant, evolving-feedback, direct and forward-only rules (one with options) through --rules."""
    rules = "usf,brsf,frsf,kp(lam=0.99),wm,drtp,sdfa,pepita"
    out = tmp_path / "run"
    parity_job.main(["--quick", "--rules", rules, "--steps", "20", "--eval-every", "10", "--width", "16",
                     "--out", str(out), "--no-progress"])
    rows = json.loads((out / "summary.json").read_text())["results"]
    assert {r["rule"] for r in rows} == set(rules.split(","))
    assert all(r["final_loss"] is not None for r in rows)
