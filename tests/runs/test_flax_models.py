"""experiments/flax_models.py: tiny end-to-end runs (bundled examples, a model by import path)
and its one-line CLI errors; fa_jax.wrap.resolve on its own."""

import json

import pytest
from error_check import one_line_error, one_line_exit
from repository import load_script
from resume_check import assert_resume_reproduces

from fa_jax.wrap import resolve

flax_models = load_script("experiments/flax_models.py", "flax_models")


def test_quick_run_writes_table_curves_alignment_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    assert flax_models.main(["--quick", "--models", "mnist_cnn,resnet_blocks", "--rules", "bp,dfa", "--steps", "20",
                             "--eval-every", "10", "--out", str(out), "--no-progress", "--diagnostics"]) == 0
    printed = capsys.readouterr().out
    assert "note: diagnostics skipped for resnet_blocks: batch norm" in printed
    assert "| mnist_cnn | 1,722 | bp |" in printed and "| resnet_blocks |" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert [(s["model"], s["rule"]) for s in summary["by_model_rule"]] == [
        ("mnist_cnn", "bp"), ("mnist_cnn", "dfa"), ("resnet_blocks", "bp"), ("resnet_blocks", "dfa")]
    assert all(s["seeds"] == 2 and s["diverged"] == 0 and 0 <= s["mean_acc"] <= 1 for s in summary["by_model_rule"])
    assert summary["diagnostics_skipped"] == ["resnet_blocks"]
    alignment = (out / "alignment.md").read_text()
    assert "### mnist_cnn: angle" in alignment and "diagnostics skipped for resnet_blocks" in alignment
    assert (out / "alignment_mnist_cnn.png").stat().st_size > 1000 and not (out / "alignment_resnet_blocks.png").exists()
    assert (out / "curves.png").stat().st_size > 1000
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * 2 * 2 * 2
    assert all((r.get("grad_alignment_deg") is None) == (r["model"] == "resnet_blocks") for r in lines)
    config = json.loads((out / "config.json").read_text())
    assert config["input_shape"] == [8, 8, 1] and config["job"] == "flax_models"
    assert [p for p, _ in config["dfa_points"]["resnet_blocks"]] == [
        f"ResNetBlock_{i}/DFAPoint_0" for i in range(3)]  # the markers replace the default points
    assert [p for p, _ in config["dfa_points"]["mnist_cnn"]] == ["Conv_1", "Dense_0", "Dense_1"]
    assert_resume_reproduces(flax_models.main, out, "--no-progress")


def test_a_model_by_import_path_gets_n_out_and_trains(tmp_path, capsys):
    out = tmp_path / "run"
    assert flax_models.main(["--quick", "--model", "fa_jax.wrap.examples:MNISTCNN", "--rules", "fa", "--seeds", "1",
                             "--out", str(out), "--no-progress", "--checkpoint-every", "0"]) == 0
    assert "| fa_jax.wrap.examples:MNISTCNN | 87,178 | fa |" in capsys.readouterr().out  # width 1: the flax example
    (row,) = json.loads((out / "summary.json").read_text())["by_model_rule"]
    assert row["model"] == "fa_jax.wrap.examples:MNISTCNN" and row["seeds"] == 1


@pytest.mark.parametrize("argv,match", [
    (["--models", "mnist_cnn,vgg"], "unknown model 'vgg'; known: mnist_cnn, resnet, resnet_blocks"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--model", "no_such_package.nets:Net"],
     "model 'no_such_package.nets:Net': cannot import no_such_package.nets (ModuleNotFoundError"),
    (["--model", "fa_jax.wrap.examples:VGG"], "fa_jax.wrap.examples has no attribute 'VGG'"),
    (["--model", "fa_jax.wrap.examples:EXAMPLES"], "is a dict, not a Flax module"),
    (["--model", "json:JSONDecoder"], "is the class JSONDecoder, not a Flax module"),
    (["--model", "fa_jax.wrap.examples:ResNetBlock"], "cannot make ResNetBlock() (ResNetBlock.__init__() missing"),
    (["--model", "a:b:c"], "model 'a:b:c' is not an import path package.module:ClassName"),
    (["--rules", "bp,ntk"], "rule 'ntk' does not run on a wrapped Flax model"),
    (["--rules", "bp,pepita"], "rule 'pepita' on a wrapped Flax model: layer Conv_0 outputs (8, 8, 16) per example"),
    (["--rules", "bp,sgd"], "unknown rule 'sgd'"),
    (["--dataset", "svhn"], "unknown image dataset 'svhn'"),
    (["--width", "0"], "--width must be > 0, got 0.0"),
    (["--resnet-stages", "1,0"], "--resnet-stages must be >= 1 each, got 1,0"),
    (["--steps", "25", "--eval-every", "10"], "--steps 25 is not a multiple of --eval-every 10"),
    (["--seeds", "1000000000"], "(1000000000 seeds x"),
])
def test_bad_arguments_are_one_line_errors(argv, match, capsys, tmp_path):
    err = one_line_exit(capsys, flax_models.main, argv + ["--out", str(tmp_path / "x")])
    assert err.startswith("flax_models.py: error: ") and match in err
    assert not (tmp_path / "x").exists()


def test_resolve_load_makes_linen_classes_and_keeps_instances():
    from fa_jax.wrap.examples import MNISTCNN, ResNet

    m = resolve.load("fa_jax.wrap.examples:MNISTCNN", 7)
    assert isinstance(m, MNISTCNN) and m.n_out == 7 and m.width == 1.0
    assert resolve.load("fa_jax.wrap.examples:ResNet").n_out == 10  # no n_out given: the class default
    assert isinstance(resolve.load("fa_jax.wrap.examples:ResNet", 3), ResNet)
    assert resolve.is_spec("a.b:C") and not resolve.is_spec("mnist_cnn")
    one_line_error(lambda: resolve.load("mnist_cnn"), "--model 'mnist_cnn' is not an import path")
    one_line_error(lambda: resolve.load("os.path:join", what="--net"), "--net 'os.path:join' is a function")
