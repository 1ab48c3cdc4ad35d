"""Hostile input to the command-line scripts and the run directories, table-driven: every CLI
row is ``main(argv)`` in-process with exit code 2 and exactly one line on stderr naming the
bad value (no traceback, no run directory); a full or read-only disk is one line naming the
path and never leaves a summary.json. Only the tests named "it runs" compile (tiny runs).
"""

import errno
import math
from pathlib import Path

import pytest
from error_check import one_line_error
from repository import ROOT, load_script

import fa_jax as fj
from fa_jax.runs import rundir



# output directory: full disk, read-only folder
def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_write_json_disk_full_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.json, "dump", _enospc)
    msg = one_line_error(lambda: rundir.write_json(tmp_path / "summary.json", {"a": 1}),
                          f"No space left on device: '{tmp_path / 'summary.json'}'", OSError)
    assert msg.startswith("[Errno 28]") and list(tmp_path.iterdir()) == []


def test_write_json_nan_leaves_no_temp_file(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values"):
        rundir.write_json(tmp_path / "summary.json", {"a": math.nan})
    assert list(tmp_path.iterdir()) == []


def test_append_jsonl_and_figures_name_the_path(tmp_path, monkeypatch):
    import matplotlib.figure
    import matplotlib.pyplot as plt

    monkeypatch.setattr(rundir.os, "fsync", _enospc)
    one_line_error(lambda: rundir.append_jsonl(tmp_path / "metrics.jsonl", [{"a": 1}]), "metrics.jsonl'", OSError)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _enospc)
    one_line_error(lambda: fj.plots.save(plt.figure(), tmp_path / "curves.png"), "curves.png'", OSError)


def test_read_only_out(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders (the /sys row of the CLI table covers root)")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        one_line_error(lambda: rundir.prepare(ro / "run"), "is not writable (Permission denied)")
    finally:
        ro.chmod(0o700)


# the command-line scripts: every row is `main(argv)` in-process, exit code 2, exactly one line
# on stderr naming the bad value, no traceback, no summary.json
SCRIPTS = {p.stem: p for p in [*(ROOT / "experiments").glob("*.py"), *(ROOT / "experiments" / "lectures").glob("*.py")]}
BASE = {"regression": ["--quick", "--dataset", "diabetes"]}  # California is not bundled with scikit-learn
_MODULES = {}


def _main(name):
    if name not in _MODULES:
        _MODULES[name] = load_script(SCRIPTS[name], f"hostile_{name}")
    return _MODULES[name].main


ENORMOUS = "this sweep needs about"
CLI_ERRORS = [(name, argv, match) for name in sorted(SCRIPTS) for argv, match in (
    (["--config", "{bad_config}"], "bad.py:1: syntax error in config file: invalid syntax"),
    (["--out", "{file}"], "exists and is not a directory"),
    (["--out", "/sys/fa_jax_run"], "is not writable"),  # a read-only place, even for root
)] + [
    ("parity", ["--steps", "0"], "--steps must be >= 1, got 0"),
    ("parity", ["--lr", "-1"], "learning rate must be positive and finite, got -1.0"),
    ("parity", ["--lr", "nan"], "learning rate must be positive and finite, got nan"),
    ("parity", ["--width", "0"], "--width must be >= 1, got 0"),
    ("parity", ["--seeds", "-3"], "--seeds must be >= 1, got -3"),
    ("parity", ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ("parity", ["--n", "0"], "parity n must be a positive int, got 0"),
    ("parity", ["--k", "40", "--n", "10"], "parity k=40 > n=10: need 1 <= k <= n"),
    ("parity", ["--rules", "nope"], "unknown rule 'nope'; known: bp, "),
    ("parity", ["--width", "100000000"], ENORMOUS),
    ("parity", ["--seeds", "1000000000"], "(1000000000 seeds x"),
    ("parity", ["--depth", "100000"], "the model has 100001 layers"),
    ("parity", ["--steps", "1000000000000"], "does not fit the int32 step counter"),
    ("parity", ["--steps", "2000000000", "--eval-every", "1"], "reduce steps/eval_every or seeds"),
    ("parity", ["--n", "1000000000"], "the parity data (n=1000000000, 2048 examples) would take"),
    ("cnn_rules", ["--steps", "0"], "--steps must be >= 1, got 0"),
    ("cnn_rules", ["--lr", "nan"], "learning rate must be positive and finite, got nan"),
    ("cnn_rules", ["--width", "0"], "--width must be > 0, got 0.0"),
    ("cnn_rules", ["--width", "1e8"], ENORMOUS),
    ("cnn_rules", ["--seeds", "1000000000"], "(1000000000 seeds x"),
    ("cnn_rules", ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ("cnn_rules", ["--rules", "nope"], "unknown rule 'nope'"),
    ("cnn_rules", ["--models", "nope"], "unknown model 'nope'; known: allconv, lecture_cnn, mlp, resnet20"),
    ("cnn_rules", ["--resnet-depth", "7"], "resnet depth must be 6n+2 with n >= 1"),
    ("cnn_rules", ["--mlp-hidden", "0"], "dense features must be a positive int or a pair of them, got (0, 0)"),
    ("alignment", ["--steps", "0"], "--steps must be >= 1, got 0"),
    ("alignment", ["--lr", "-1"], "learning rate must be positive and finite, got -1.0"),
    ("alignment", ["--width", "0"], "--width must be >= 1, got 0"),
    ("alignment", ["--depth", "-1"], "--depth must be >= 1, got -1"),
    ("alignment", ["--width", "100000000"], ENORMOUS),
    ("alignment", ["--tasks", "nope"], "unknown task 'nope'"),
    ("feedback_schemes", ["--rules", "bp"], "rule 'bp' uses no feedback"),
    ("feedback_schemes", ["--schemes", "nope"], "unknown feedback scheme 'nope'"),
    ("feedback_schemes", ["--seeds", "1000000000"], "(1000000000 seeds x"),
    ("feedback_schemes", ["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ("parity_study", ["--width", "0"], "--width values must be >= 1, got 0"),
    ("parity_study", ["--n", "0"], "--n values must be >= 1, got 0"),
    ("parity_study", ["--k", "40", "--n", "10"], "k=40 > n=10 in the grid"),
    ("parity_study", ["--methods", "nope"], "unknown rule 'nope'"),
    ("parity_study", ["--lr", "nan"], "learning rate must be positive and finite, got nan"),
    ("parity_study", ["--seeds", "-3"], "--seeds must be >= 1, got -3"),
    ("parity_study", ["--width", "100000000"], ENORMOUS),
    ("parity_study", ["--n", "1000000000"], "the parity data (n=1000000000"),
    ("optimizer_study", ["--steps", "0"], "--steps must be >= 1, got 0"),
    ("optimizer_study", ["--width", "0"], "--width must be >= 1, got 0"),
    ("optimizer_study", ["--optimizers", "nope"], "unknown optimizer 'nope'"),
    ("optimizer_study", ["--lr-factors", "0"], "--lr-factors must be positive, got 0.0"),
    ("optimizer_study", ["--depth", "100000"], "the model has 100001 layers"),
    ("optimizer_study", ["--seeds", "1000000000"], "(2000000000 seeds x"),  # 2 learning rates x seeds (--quick)
    ("xor", ["--lr", "-1"], "--lr must be > 0, got -1.0"),
    ("xor", ["--lr", "inf"], "--lr must be finite, got inf"),
    ("xor", ["--seeds", "1000000000"], "(1000000000 seeds x"),
    ("xor", ["--rules", "nope"], "unknown rule 'nope'"),
    ("gradients", ["--depth", "100000"], "the model has 100001 layers"),
    ("gradients", ["--steps", "1000000000000"], "does not fit the int32 step counter"),
    ("gradients", ["--clip-norm", "-1"], "--clip-norm must be > 0, got -1.0"),
    ("normalization", ["--lrs", "0"], "learning rate must be positive and finite, got 0.0"),
    ("normalization", ["--x-max", "inf"], "--x-max must be finite, got inf"),
    ("normalization", ["--width", "100000000"], ENORMOUS),
    ("normalization", ["--reg-steps", "1000000000000"], "--reg-steps must be <= 1000000"),
    ("regularization", ["--dropout", "1.5"], "dropout p must be in [0, 1), got 1.5"),
    ("regularization", ["--decay", "-1"], "decoupled_decay must be a finite number >= 0, got -1.0"),
    ("regularization", ["--rbf-steps", "1000000000000"], "--rbf-steps must be <= 1000000"),
    ("regularization", ["--seeds", "1000000000"], "(1000000000 seeds x"),
    ("regression", ["--lr", "nan"], "--lr must be > 0, got nan"),
    ("regression", ["--width", "0"], "--width must be > 0, got 0"),
    ("regression", ["--width", "100000000"], ENORMOUS),
    ("regression", ["--dataset", "nope"], "unknown dataset 'nope'"),
    ("batch_loop", ["--batch", "100000"], "--batch must be <= 1348 (the digits training set), got 100000"),
    ("batch_loop", ["--width", "100000000"], ENORMOUS),
    ("batch_loop", ["--rule", "nope"], "unknown rule 'nope'"),
    ("gd_variants", ["--steps", "0"], "--steps must be > 0, got 0"),
    ("gd_variants", ["--steps", "1000000000000"], "--steps must be <= 1000000"),
    ("gd_variants", ["--start", "nan", "nan"], "--start must be finite, got [nan, nan]"),
]


def _run_cli(name, argv, tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(:\n    return {}\n")
    (tmp_path / "file").write_text("x")
    argv = [a.format(bad_config=bad, file=tmp_path / "file") for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_:
        _main(name)(BASE.get(name, ["--quick"]) + argv)
    err = capsys.readouterr().err
    return exit_.value.code, err


@pytest.mark.parametrize("name,argv,match", CLI_ERRORS, ids=[f"{n} {' '.join(a)}" for n, a, _ in CLI_ERRORS])
def test_cli_error_is_one_line_exit_2(name, argv, match, tmp_path, capsys):
    code, err = _run_cli(name, argv, tmp_path, capsys)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{name}.py: error: ") and match in lines[0], err
    assert not (tmp_path / "run").exists()  # refused before the run directory was made


TINY = ["--n", "4", "--k", "2", "--rules", "bp", "--seeds", "1", "--steps", "2", "--eval-every", "1", "--width", "4",
        "--no-progress"]


def test_cli_disk_full_at_config_json_before_compiling(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rundir.json, "dump", _enospc)
    code, err = _run_cli("parity", TINY, tmp_path, capsys)
    assert code == 2 and err == (f"parity.py: error: cannot write {tmp_path / 'run' / 'config.json'}: No space left "
                                 f"on device (errno 28); the run is incomplete (no summary.json)\n")
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("where", ["metrics.jsonl", "curves.png", "summary.json"])
def test_cli_disk_full_after_training_it_runs(where, tmp_path, capsys, monkeypatch):
    """The disk fills while the run writes its results (a tiny run): one line naming the file,
    exit code 2, and no summary.json, so the directory never looks complete."""
    import matplotlib.figure

    if where == "metrics.jsonl":
        monkeypatch.setattr(rundir.os, "fsync", _enospc)
    elif where == "curves.png":
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _enospc)
    else:
        write = rundir.write_json
        def write_json(path, obj):
            if Path(path).name == where:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            write(path, obj)

        monkeypatch.setattr(rundir, "write_json", write_json)
    code, err = _run_cli("parity", TINY, tmp_path, capsys)
    assert code == 2 and err == (f"parity.py: error: cannot write {tmp_path / 'run' / where}: No space left on device "
                                 f"(errno 28); the run is incomplete (no summary.json)\n"), err
    assert (tmp_path / "run" / "config.json").exists() and not (tmp_path / "run" / "summary.json").exists()


def test_cli_batch_larger_than_training_set_says_so_and_runs(tmp_path):
    """A warning (on stderr outside pytest), then the full-batch run (tiny)."""
    with pytest.warns(UserWarning, match=r"batch_size=8 > the 3 training examples .*full-batch gradient descent"):
        code = _main("parity")(TINY + ["--n-train", "3", "--batch-size", "8", "--out", str(tmp_path / "run")])
    assert code == 0 and (tmp_path / "run" / "summary.json").exists()


def test_cli_refusal_in_a_real_process_has_no_traceback(tmp_path):
    """As a user sees it: an enormous width from the shell is one line on stderr, exit code 2."""
    import os
    import subprocess
    import sys

    p = subprocess.run([sys.executable, str(SCRIPTS["parity"]), "--width", "100000000", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 1 and p.stderr.startswith("parity.py: error: this sweep needs about")
    assert not (tmp_path / "r").exists()
