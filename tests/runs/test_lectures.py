"""Every lecture experiment runs (--quick), writes its run directory with a plot and a verdict,
and rejects bad hyperparameters with a one-line error (exit 2)."""

import json
from pathlib import Path

import pytest
from error_check import one_line_exit
from repository import load_script
from resume_check import assert_resume_reproduces

PLOTS = {"xor": "xor.png", "gradients": "gradients.png", "gd_variants": "gd_variants.png",
         "batch_loop": "batch_loop.png", "regularization": "regularization.png", "regression": "regression.png",
         "normalization": "normalization.png", "spectral": "spectral.png",
         "dropout_norms": "dropout_norms.png"}
EXTRA = {"regression": ["--dataset", "diabetes"], "xor": ["--checkpoint-every", "5", "--keep-checkpoints", "1"]}


def _load(name):
    return load_script(f"experiments/lectures/{name}.py", f"lecture_{name}")


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_lecture_runs_and_writes_plot_and_verdict(tmp_path, name, capsys):
    assert _load(name).main(["--quick", "--out", str(tmp_path), *EXTRA.get(name, [])]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verdict"] and "\n" not in summary["verdict"]
    assert summary["verdict"] in capsys.readouterr().out
    assert (tmp_path / PLOTS[name]).stat().st_size > 5000
    assert json.loads((tmp_path / "config.json").read_text())["quick"] is True
    if name == "dropout_norms":  # --quick: dfa, standout on the MLP and the conv net, group norm on the conv net
        cells = summary["cells"]
        assert sorted(cells) == ["cnn-norm/group/dfa", "cnn/standout/dfa", "mlp/standout/dfa"]
        for c in cells.values():
            assert c["gap"]["mean"] == pytest.approx(c["train_acc"]["mean"] - c["val_acc"]["mean"], abs=1e-6)
            assert 0 <= c["test_acc"]["mean"] <= 1 and len(c["test_acc"]["per_seed"]) == 1
    if name == "xor":  # a resumed run restores every sweep from its checkpoints: same summary
        assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir())[:2] == ["bp-N(0,%201%2Ffan_in)", "bp-U(-10,%2010)"]
        assert_resume_reproduces(_load(name).main, tmp_path)
        assert [p.name for p in (tmp_path / "checkpoints" / "bp-U(-10,%2010)").iterdir() if p.name.isdigit()] == ["20"]


def test_dropout_norms_verdict_skips_a_group_left_out():
    mod = _load("dropout_norms")
    args = mod.parser().parse_args(["--rules", "bp", "--dropouts", "", "--seeds", "2"])
    cell = {"test_acc": {"mean": 0.9}, "gap": {"mean": 0.05}}
    got = mod.verdict(args, {("cnn-norm", "group", "bp"): cell, ("cnn-norm", "batch", "bp"): {
        "test_acc": {"mean": None}, "gap": {"mean": None}}})
    assert got == "digits test accuracy, mean of 2 seeds: bp cnn-norm: best group 0.900 (gap 0.050)"


@pytest.mark.parametrize("name,argv,match", [
    ("xor", ["--lr", "-0.1"], "--lr must be > 0, got -0.1"),
    ("xor", ["--rules", "bp,xx"], "unknown rule 'xx'"),
    ("regularization", ["--dropout", "1.0"], "dropout p must be in [0, 1), got 1.0"),
    ("regularization", ["--decay", "-1"], "decoupled_decay must be a finite number >= 0, got -1.0"),
    ("regression", ["--dataset", "boston"], "unknown dataset 'boston'"),
    ("gd_variants", ["--steps", "0"], "--steps must be > 0, got 0"),
    ("normalization", ["--lrs", "0.1,-1"], "learning rate must be positive and finite, got -1.0"),
    ("spectral", ["--max-freq", "32"], "phase_shift max_freq=32 must be below the Nyquist frequency t/2 = 32"),
    ("spectral", ["--rules", "bp,xx"], "unknown rule 'xx'"),
    ("dropout_norms", ["--p", "1"], "dropout p must be in [0, 1), got 1"),
    ("dropout_norms", ["--dropouts", "none,saltpepper"], "--dropouts: unknown 'saltpepper'; accepted: none, bernoulli"),
    ("dropout_norms", ["--groups", "3"], "groups=3 does not divide 16 channels; use a divisor of 16: 1, 2, 4, 8, 16"),
    ("dropout_norms", ["--n-train", "1348"], "--n-train must be below the 1348 training images"),
    ("dropout_norms", ["--dropouts", "", "--norms", ""], "--dropouts and --norms are both empty"),
])
def test_bad_hyperparameters_are_one_line_errors(tmp_path, capsys, name, argv, match):
    err = one_line_exit(capsys, _load(name).main, [*argv, "--out", str(tmp_path)])
    assert match in err
    assert not (tmp_path / "config.json").exists()


def test_california_is_loaded_from_cache_or_names_diabetes(tmp_path, capsys):
    from sklearn.datasets import get_data_home

    if (Path(get_data_home()) / "cal_housing_py3.pkz").exists():
        pytest.skip("California housing is cached here")
    with pytest.raises(SystemExit) as exit_:
        _load("regression").main(["--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "use --dataset diabetes (bundled with scikit-learn)" in capsys.readouterr().err


def test_checkpoint_interval_that_misses_the_evaluations_is_refused(tmp_path, capsys):
    """--quick --steps 200 evaluates every 2 steps: checkpoints every 3 steps cannot fall on them."""
    err = one_line_exit(capsys, _load("xor").main, ["--quick", "--steps", "200", "--checkpoint-every", "3",
                                                    "--out", str(tmp_path)])
    assert "--checkpoint-every 3 is not a multiple of the evaluation interval of sweep" in err and "eval_every=2" in err
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "checkpoints").exists()
