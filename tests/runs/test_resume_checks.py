"""--resume refuses, in one line and before anything is written, a run made in another precision or
by another script; cnn_rules' --resnet-groups default fits every --resnet-width."""

import json

import jax
import pytest
from error_check import one_line_error, one_line_exit
from repository import load_script

from fa_jax.errors import InputError
from fa_jax.runs.study import Study


@pytest.fixture(scope="module")
def parity():
    return load_script("experiments/parity.py", "resume_checks_parity")


@pytest.fixture(scope="module")
def cnn_rules():
    return load_script("experiments/cnn_rules.py", "resume_checks_cnn_rules")


def _recorded(out, environment, job="parity", **config):
    out.mkdir(exist_ok=True)
    (out / "config.json").write_text(json.dumps({"job": job, **config, "environment": environment}))
    return (out / "config.json").read_bytes()


@pytest.mark.parametrize("now64", [False, True])
def test_a_resume_in_another_precision_is_refused(tmp_path, now64, request):
    if now64:
        request.getfixturevalue("x64")  # float64 for this test
    before = _recorded(tmp_path, {"x64": not now64})
    msg = one_line_error(lambda: Study.start(tmp_path, {"job": "parity"}, resume=True), "--resume", InputError)
    if now64:  # recorded 32-bit, now 64-bit
        assert "made with 32-bit floats" in msg and "this process uses 64-bit" in msg and "unset JAX_ENABLE_X64" in msg
    else:
        assert "made with 64-bit floats" in msg and "this process uses 32-bit" in msg and "JAX_ENABLE_X64=1" in msg
    assert (tmp_path / "config.json").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json"]


def test_a_resume_with_another_default_matmul_precision_is_refused(tmp_path):
    _recorded(tmp_path, {"x64": bool(jax.config.jax_enable_x64), "default_matmul_precision": "highest"})
    one_line_error(lambda: Study.start(tmp_path, {"job": "parity"}, resume=True),
                   "default matmul precision 'highest'", InputError)


def test_a_script_refuses_a_resume_in_another_precision(parity, tmp_path, capsys):
    _recorded(tmp_path, {"x64": not jax.config.jax_enable_x64})
    err = one_line_exit(capsys, parity.main, ["--quick", "--resume", str(tmp_path), "--no-progress"])
    assert "JAX_ENABLE_X64" in err and "-bit floats" in err


def test_a_resume_of_another_scripts_run_names_that_script(tmp_path, capsys):
    flax_models = load_script("experiments/flax_models.py", "resume_checks_flax_models")
    _recorded(tmp_path, {}, feedback={"dist": "uniform"}, model={"sizes": [1]}, rules=["bp"])
    err = one_line_exit(capsys, flax_models.parser().parse_args, ["--resume", str(tmp_path)])
    assert "the run there was made by parity (its config.json's job), not by flax_models.py" in err
    assert "expected str" not in err


def test_every_script_checks_the_job_of_the_run_it_resumes(parity, cnn_rules, tmp_path, capsys):
    _recorded(tmp_path, {}, job="flax_models", steps=10)
    for script, prog in ((parity, "parity.py"), (cnn_rules, "cnn_rules.py")):
        err = one_line_exit(capsys, script.main, ["--quick", "--resume", str(tmp_path)])
        assert f"made by flax_models (its config.json's job), not by {prog}" in err
    _recorded(tmp_path, {}, job="feedback-schemes")
    feedback_schemes = load_script("experiments/feedback_schemes.py", "resume_checks_feedback_schemes")
    assert feedback_schemes.parser().parse_args(["--resume", str(tmp_path)]).out == str(tmp_path)
    # Study.start on its own: the job it is given against the recorded one
    msg = one_line_error(lambda: Study.start(tmp_path, {"job": "parity"}, resume=True), "made by", InputError)
    assert "made by feedback-schemes (its config.json's job), not by parity" in msg


@pytest.mark.parametrize("width,groups", [(2, 2), (4, 4), (16, 8), (12, 6), (9, 3), (7, 7), (1, 1)])
def test_resnet_groups_default_fits_the_width(cnn_rules, width, groups):
    args = cnn_rules.parser().parse_args(["--quick", "--models", "resnet20", "--resnet-norm", "group",
                                          "--resnet-width", str(width)])
    assert args.resnet_groups is None
    assert cnn_rules.resnet_groups(args) == groups


def test_quick_resnet20_with_group_norm_builds(cnn_rules):
    args = cnn_rules.parser().parse_args(["--quick", "--models", "resnet20", "--resnet-norm", "group"])
    cnn_rules.cli.apply_defaults(args, cnn_rules.QUICK)
    cnn_rules.build(args)  # no clash of a default with --quick's width 2
    assert args.resnet_groups == 2  # what config.json records


def test_a_typed_resnet_groups_that_does_not_divide_the_width_is_still_refused(cnn_rules, capsys, tmp_path):
    err = one_line_exit(capsys, cnn_rules.main, ["--quick", "--models", "resnet20", "--resnet-norm", "group",
                                                 "--resnet-groups", "8", "--out", str(tmp_path / "x")])
    assert "--resnet-groups 8 does not divide --resnet-width 2 (--quick's width)" in err
