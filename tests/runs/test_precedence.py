"""Explicit flag > --config.KEY > config file > preset > default, for every script with a preset:
a value the user typed (even one equal to the script's default) is never replaced by --quick."""

import json

import pytest
from repository import load_script

from fa_jax.runs import cli

# scripts whose presets go through cli.apply_defaults, and the preset dicts they apply
PRESET_SCRIPTS = ["experiments/parity.py", "experiments/alignment.py", "experiments/feedback_schemes.py",
                  "experiments/cnn_rules.py", "experiments/flax_models.py", *(f"experiments/lectures/{n}.py" for n in (
                      "batch_loop", "dropout_norms", "gd_variants", "gradients", "normalization", "regression",
                      "regularization", "spectral", "xor"))]


def _text(value) -> str:
    return ",".join(map(repr if isinstance(value, float) else str, value)) if isinstance(value, list) else (
        repr(value) if isinstance(value, float) else str(value))


def _cases():
    for path in PRESET_SCRIPTS:
        mod = load_script(path, "prec_" + path.replace("/", "_")[:-3])
        presets = {"quick": mod.QUICK, **{f"preset {k}": v for k, v in getattr(mod, "PRESETS", {}).items()}}
        for preset, values in presets.items():
            for key in values:
                yield pytest.param(mod, preset, key, id=f"{path.split('/')[-1]}-{preset}-{key}")


@pytest.mark.parametrize(("mod", "preset", "key"), list(_cases()))
def test_a_typed_default_beats_the_preset(mod, preset, key):
    p = mod.parser()
    default = p.get_default(key)
    flag = "--" + key.replace("_", "-")
    head = ["--quick"] if preset == "quick" else ["--preset", preset.split()[1]]
    values = mod.QUICK if preset == "quick" else mod.PRESETS[preset.split()[1]]
    for argv in (head + [flag, _text(default)], head + [f"--config.{key}={_text(default)}"]):
        args = p.parse_args(argv)
        cli.apply_defaults(args, values)
        assert getattr(args, key) == default, argv
        assert key in cli.given(args)
    args = p.parse_args(head)  # untouched: the preset's value
    cli.apply_defaults(args, values)
    assert getattr(args, key) == values[key]


def test_a_config_value_equal_to_the_default_beats_quick(tmp_path):
    mod = load_script("experiments/parity.py", "prec_parity_cfg")
    cfg = tmp_path / "cfg.py"
    cfg.write_text("def get_config():\n    return {'seeds': 3, 'steps': 1500}\n")
    p = mod.parser()
    args = p.parse_args(["--config", str(cfg), "--quick"])
    cli.apply_defaults(args, mod.QUICK)
    assert (args.seeds, args.steps, args.n, args.eval_every) == (3, 1500, mod.QUICK["n"], mod.QUICK["eval_every"])
    assert "_given" not in vars(args) and cli.given(args) == {"seeds", "steps", "quick"}


def test_the_first_preset_wins_over_a_later_one():
    mod = load_script("experiments/cnn_rules.py", "prec_cnn_two")
    name, values = next((k, v) for k, v in mod.PRESETS.items() if set(v) & set(mod.QUICK))
    key = next(k for k in values if k in mod.QUICK and values[k] != mod.QUICK[k])
    args = mod.parser().parse_args(["--quick", "--preset", name])
    cli.apply_defaults(args, mod.QUICK)
    cli.apply_defaults(args, values)
    assert getattr(args, key) == mod.QUICK[key]


def test_a_preset_key_that_is_no_option_is_refused():
    args = load_script("experiments/parity.py", "prec_parity_bad").parser().parse_args([])
    with pytest.raises(ValueError, match="preset key 'nope' is not an option"):
        cli.apply_defaults(args, {"nope": 1})


def test_given_needs_the_projects_parser():
    import argparse

    with pytest.raises(TypeError, match="ArgParser"):
        cli.given(argparse.Namespace(seeds=2))


def test_parity_quick_with_typed_defaults_runs_what_was_typed(tmp_path, capsys):
    mod = load_script("experiments/parity.py", "prec_parity_run")
    out = tmp_path / "run"
    assert mod.main(["--quick", "--seeds", "8", "--steps", "100", "--eval-every", "100", "--rules", "bp",
                     "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["seed"] for r in summary["results"]) == list(range(8))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rows}) == [100]
    config = json.loads((out / "config.json").read_text())
    assert (config["seeds"], config["eval_every"], config["n"]) == (8, 100, mod.QUICK["n"])


def test_quick_does_not_turn_a_refused_interval_into_an_accepted_one(capsys):
    from error_check import one_line_exit

    mod = load_script("experiments/parity.py", "prec_parity_refuse")
    err = one_line_exit(capsys, mod.main, ["--quick", "--steps", "150", "--eval-every", "100"])
    assert "--steps 150 is not a multiple of --eval-every 100" in err
