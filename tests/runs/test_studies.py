"""The parity and optimizer studies: grid helpers, outputs of tiny runs, one-line CLI errors."""

import json

import numpy as np
import pytest
from error_check import one_line_exit
from repository import load_script
from resume_check import assert_resume_reproduces

from fa_jax.runs import study as study_lib
from fa_jax.runs import tables

def _script(name):
    return load_script(f"experiments/{name}.py", name)


def test_steps_to_threshold_and_summary():
    steps = np.array([10, 20, 30])
    acc = np.array([[0.5, 0.96, 0.99], [0.5, 0.6, 0.7], [np.nan, np.nan, np.nan]])
    assert study_lib.steps_to_threshold(steps, acc) == [20, None, None]
    rows = [{"m": "a", "test_accuracy": 1.0, "steps_to_95": 20, "diverged": False},
            {"m": "a", "test_accuracy": 0.5, "steps_to_95": None, "diverged": False},
            {"m": "a", "test_accuracy": None, "steps_to_95": None, "diverged": True}]
    (s,) = tables.summarize(rows, ("m",))
    assert s["solved"] == pytest.approx(1 / 3) and s["mean_acc"] == 0.75 and s["diverged"] == 1
    assert s["median_steps_to_95"] == 20.0
    assert "| a | 0.750 ± 0.250 | 0.33 | 20 | 1/3 |" in tables.table([s], ("m", *tables.GRID_TABLE))
    assert study_lib.product(n=[1, 2], k=[3]) == [{"n": 1, "k": 3}, {"n": 2, "k": 3}]


def test_parity_study_writes_its_outputs(tmp_path):
    study = _script("parity_study")
    out = tmp_path / "run"
    assert study.main(["--quick", "--methods", "rf_relu", "--n", "6", "--k", "2,3", "--steps", "100",
                       "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["results"]
    assert len(rows) == 2 * 2  # k x seeds
    assert set(rows[0]) >= {"method", "n", "k", "width", "seed", "test_accuracy", "steps_to_95", "final_loss",
                            "diverged"}
    assert {(r["method"], r["k"]) for r in rows} == {("rf_relu", 2), ("rf_relu", 3)}
    for name in ("config.json", "metrics.jsonl", "table.md", "accuracy_vs_n.png", "heatmap_rf_relu.png"):
        assert (out / name).stat().st_size > 0, name
    assert "| rf_relu | 6 | 3 | 32 |" in (out / "table.md").read_text()
    assert_resume_reproduces(study.main, out, "--no-progress")


def test_paper_preset_on_the_offline_digits(tmp_path):
    study = _script("parity_study")
    out = tmp_path / "paper"
    assert study.main(["--preset", "paper", "--dataset", "digits-parity", "--epochs", "1", "--seeds", "1",
                       "--methods", "ntk", "--width", "16", "--out", str(out), "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["loss"], cfg["optimizer"], cfg["batch_size"], cfg["k"], cfg["steps"]) == ("hinge", "adadelta", 128,
                                                                                         [3], 11)
    assert json.loads((out / "summary.json").read_text())["task"] == "digits-parity(n=3,k=3)"


def test_optimizer_study_writes_its_outputs(tmp_path):
    study = _script("optimizer_study")
    out = tmp_path / "opt"
    assert study.main(["--quick", "--rules", "dfa", "--optimizers", "adadelta,nesterov", "--out", str(out),
                       "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["results"]) == 2 * 2 * 2  # optimizers x learning rates x seeds
    assert {r["lr"] for r in summary["results"] if r["optimizer"] == "adadelta"} == {1.0, 3.0}
    assert [(b["optimizer"], b["rule"]) for b in summary["best"]] == [("adadelta", "dfa"), ("nesterov", "dfa")]
    assert (out / "curves_parity.png").stat().st_size > 0 and "adadelta" in (out / "table.md").read_text()


@pytest.mark.parametrize("script,argv,message", [
    ("parity_study", ["--methods", "bp,lazy"], "unknown rule 'lazy'; known:"),
    ("parity_study", ["--n", "4", "--k", "5"], "k=5 > n=4 in the grid"),
    ("parity_study", ["--width", "0"], "--width values must be >= 1, got 0"),
    ("parity_study", ["--dataset", "svhn-parity"], "unknown dataset 'svhn-parity'; known: parity, digits-parity"),
    ("parity_study", ["--dataset", "mnist-parity", "--offline", "--data-dir", "{tmp}"],
     "dataset 'mnist' split 'train' is not available here"),
    ("parity_study", ["--epochs", "2"], "--epochs applies to image parity"),
    ("parity", ["--rules", "bp,ntk"], "rule 'ntk' needs a depth-two MLP [n_in, width, n_out]"),
    ("optimizer_study", ["--optimizers", "lion"], "unknown optimizer 'lion'; known: sgd"),
    ("optimizer_study", ["--rules", "bp,xx"], "unknown rule 'xx'"),
])
def test_bad_inputs_are_one_line_errors_exit_2(script, argv, message, tmp_path, capsys):
    study = _script(script)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(tmp_path / "o")]
    err = one_line_exit(capsys, study.main, argv)
    assert message in err, err
    assert not (tmp_path / "o" / "summary.json").exists()
