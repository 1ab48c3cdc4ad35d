"""experiments/forward_gradients.py: a tiny run's tables and figures, the estimator's rows against
the weight-perturbation formula's bookkeeping, one-line errors."""

import json

import pytest
from error_check import one_line_exit
from repository import load_script

script = load_script("experiments/forward_gradients.py", "forward_gradients_under_test")


def test_a_tiny_run_writes_the_estimator_and_training_tables(tmp_path):
    out = tmp_path / "run"
    argv = ["--quick", "--widths", "6", "--rules", "fg(kind=weight),fg(kind=activity)", "--ns", "1,2,4",
            "--seeds", "1", "--steps", "4", "--eval-every", "2", "--out", str(out), "--no-progress",
            "--checkpoint-every", "0"]
    assert script.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    est = summary["estimator"]
    assert [(r["rule"], r["n"], r["groups"]) for r in est] == [
        ("fg", 1, 4), ("fg", 2, 2), ("fg", 4, 1), ("fg(kind=activity)", 1, 4), ("fg(kind=activity)", 2, 2),
        ("fg(kind=activity)", 4, 1)]
    assert all(-1 <= r["cos_mean"] <= 1 and r["params"] == 64 * 6 + 6 + 6 * 6 + 6 + 6 * 10 + 10 for r in est)
    assert sorted({(b["width"], b["rule"]) for b in summary["best"]}) == [(6, "bp"), (6, "fg"),
                                                                         (6, "fg(kind=activity)")]
    assert "| fg(kind=activity) | 6 |" in (out / "estimator.md").read_text()
    for name in ("cosines.png", "curves.png", "training.md", "metrics.jsonl", "config.json"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.parametrize("argv,message", [
    (["--ns", "2,3"], "--ns must be positive and each divide the largest, got [2, 3]"),
    (["--rules", "fg(kind=spin)"], "kind"),
    (["--widths", "0"], "--widths must be positive, got 0"),
    (["--steps", "30", "--eval-every", "20"], "--steps must be 0 or a positive multiple of --eval-every (20)"),
    (["--lrs", "0"], "--lrs must be positive, got 0.0"),
])
def test_bad_inputs_are_one_line_errors_exit_2(argv, message, tmp_path, capsys):
    err = one_line_exit(capsys, script.main, ["--quick", *argv, "--out", str(tmp_path / "o")])
    assert message in err, err
    assert not (tmp_path / "o").exists()
