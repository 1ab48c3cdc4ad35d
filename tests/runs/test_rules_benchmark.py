"""experiments/rules_benchmark.py: a tiny run's outputs, the learning-rate hand-over from digits to
mnist5k, the late-gain flag and the best-cell choice, one-line errors."""

import json

import pytest
from error_check import one_line_exit
from repository import load_script

bench = load_script("experiments/rules_benchmark.py", "rules_benchmark_under_test")


def test_a_tiny_run_writes_every_output_and_skips_what_cannot_wire(tmp_path):
    out = tmp_path / "run"
    argv = ["--quick", "--tasks", "digits-mlp,digits-lecture_cnn,mnist5k-lecture_cnn", "--rules", "bp,pepita",
            "--lrs", "0.001,0.01", "--seeds", "1", "--steps", "20", "--eval-every", "4", "--out", str(out),
            "--no-progress", "--checkpoint-every", "0"]
    assert bench.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    cells = [(b["task"], b["rule"]) for b in summary["best"]]
    assert cells == [("digits-mlp", "bp"), ("digits-mlp", "pepita"), ("digits-lecture_cnn", "bp"),
                     ("mnist5k-lecture_cnn", "bp")]
    assert [(s["task"], s["rule"]) for s in summary["skipped"]] == [("digits-lecture_cnn", "pepita"),
                                                                      ("mnist5k-lecture_cnn", "pepita")]
    rows = summary["results"]
    assert {r["lr"] for r in rows if r["task"] == "digits-lecture_cnn"} == {0.001, 0.01}
    # mnist5k trains at the digits cell's best learning rate only
    digits_best = next(b["lr"] for b in summary["best"] if b["task"] == "digits-lecture_cnn")
    assert {r["lr"] for r in rows if r["task"] == "mnist5k-lecture_cnn"} == {digits_best}
    for b in summary["best"]:
        assert len(b["angle_to_bp"]) in (3, 4) and b["angle_to_bp"][-1] == pytest.approx(0, abs=2)
        assert b["late_gain"] is not None
    assert summary["best"][0]["angle_to_bp"] == [0.0, 0.0, 0.0]  # bp against itself
    table = (out / "table.md").read_text()
    assert "| digits-mlp | pepita |" in table and "not run: pepita on digits-lecture_cnn" in table
    for name in ("accuracy.png", "curves.png", "alignment_digits-mlp.png", "metrics.jsonl", "config.json"):
        assert (out / name).stat().st_size > 0, name


def test_late_gain_compares_the_last_evaluation_with_the_one_a_fifth_before():
    rows = [{"step": s, "test_acc": a} for s, a in [(100, 0.5), (800, 0.8), (1000, 0.9), (800, 0.6), (1000, 0.9)]]
    assert bench.late_gain(rows, 1000) == pytest.approx(0.9 - 0.7)
    assert bench.late_gain([{"step": 1000, "test_acc": None}], 1000) is None


@pytest.mark.parametrize("argv,message", [
    (["--tasks", "cifar"], "unknown task 'cifar'; known: parity, digits-mlp"),
    (["--rules", "bp,kp(mu=1)"], "rule 'kp' has no option 'mu'; its options: lam, b0"),
    (["--rules", "bp,nope"], "unknown rule 'nope'"),
    (["--lrs", "0.001,0"], "--lrs must be positive, got 0.0"),
    (["--scale", "0"], "--scale must be > 0, got 0.0"),
    (["--seeds", "0"], "--seeds must be >= 1, got 0"),
    (["--steps", "30", "--eval-every", "20"], "--steps 30 is not a multiple of --eval-every 20"),
    (["--optimizer", "lion"], "lion"),
])
def test_bad_inputs_are_one_line_errors_exit_2(argv, message, tmp_path, capsys):
    err = one_line_exit(capsys, bench.main, ["--quick", *argv, "--out", str(tmp_path / "o")])
    assert message in err, err
    assert not (tmp_path / "o").exists()
