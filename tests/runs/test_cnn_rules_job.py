"""experiments/cnn_rules.py: a tiny end-to-end run and its one-line CLI errors."""

import json

import pytest
from error_check import one_line_exit
from repository import load_script
from resume_check import assert_resume_reproduces

import fa_jax as fj

cnn_rules = load_script("experiments/cnn_rules.py", "cnn_rules")


def test_quick_run_writes_table_curves_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    assert cnn_rules.main(["--quick", "--models", "lecture_cnn", "--rules", "bp,fa,dfa", "--steps", "20",
                           "--eval-every", "10", "--out", str(out), "--no-progress", "--diagnostics"]) == 0
    assert "### lecture_cnn: angle" in (out / "alignment.md").read_text()  # written before summary.json
    assert (out / "alignment.md").stat().st_mtime_ns <= (out / "summary.json").stat().st_mtime_ns
    summary = json.loads((out / "summary.json").read_text())
    assert {(s["model"], s["rule"]) for s in summary["by_model_rule"]} == {
        ("lecture_cnn", r) for r in ("bp", "fa", "dfa")}
    assert all(s["seeds"] == 2 and s["diverged"] == 0 and 0 <= s["mean_acc"] <= 1 for s in summary["by_model_rule"])
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 * 2 * 2 and json.loads(lines[0])["model"] == "lecture_cnn"
    assert (out / "curves.png").stat().st_size > 1000
    assert json.loads((out / "config.json").read_text())["input_shape"] == [8, 8, 1]
    assert "| lecture_cnn |" in capsys.readouterr().out
    assert_resume_reproduces(cnn_rules.main, out, "--no-progress")


def test_a_flax_model_by_import_path_joins_the_built_in_ones():
    flax_net = "fa_jax.wrap.examples:MNISTCNN"
    args = cnn_rules.parser().parse_args(["--quick", "--models", f"mlp,{flax_net}", "--rules", "dfa"])
    cnn_rules.cli.apply_defaults(args, cnn_rules.QUICK)
    task, models = cnn_rules.build(args)
    assert isinstance(models[flax_net], fj.FlaxModel) and models[flax_net].n_out == task.n_out
    assert ["Conv", "Conv_0"] in cnn_rules.layers_of(models[flax_net])
    assert cnn_rules.layers_of(models["mlp"])[0][0] == "Flatten"


@pytest.mark.parametrize("argv,match", [
    (["--models", "mlp,nowhere.nets:Net"], "--models 'nowhere.nets:Net': cannot import nowhere.nets"),
    (["--models", "lecture_cnn,vgg"], "unknown model 'vgg'; known: allconv, lecture_cnn, mlp, resnet20"),
    (["--dataset", "svhn"], "unknown image dataset 'svhn'"),
    (["--augment", "rotate"], "unknown augmentation 'rotate'; known: flip, crop"),
    (["--rules", "bp,sgd"], "unknown rule 'sgd'"),
    (["--padding", "FULL"], "unknown padding 'FULL'"),
    (["--steps", "25", "--eval-every", "10"], "--steps 25 is not a multiple of --eval-every 10"),
    (["--preset", "imagenet"], "unknown preset 'imagenet'; known: cifar10-gpu"),
    (["--resnet-norm", "weight"], "unknown --resnet-norm 'weight'; known: batch, layer, instance, group, none"),
    (["--resnet-groups", "0"], "--resnet-groups must be a positive int, got 0"),
    (["--resnet-norm", "group", "--resnet-groups", "3"],
     "--resnet-groups 3 does not divide --resnet-width 4; use a divisor of 4: 1, 2, 4"),
    (["--diagnostics"], "--diagnostics does not support batch norm yet; add --resnet-norm none"),
])
def test_bad_arguments_are_one_line_errors(argv, match, capsys, tmp_path):
    err = one_line_exit(capsys, cnn_rules.main, argv + ["--out", str(tmp_path / "x")])
    assert match in err
