"""Experiment configs as files: every shipped config equals its documented command, precedence
(flag > --config.KEY > file > default), and one-line errors (exit 2) for every bad config."""

import json
from pathlib import Path

import pytest
from error_check import one_line_exit
from repository import ROOT, load_script

from fa_jax.runs import cli

CONFIGS = ROOT / "experiments" / "configs"
# the README and its pages in docs/: every documented command lives on one of them
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])

# shipped config -> (script, the flags of the documented command whose table it reproduces)
SHIPPED = {
    "parity": ("experiments/parity.py", []),
    "parity_study": ("experiments/parity_study.py", []),
    "parity_study_paper_digits": ("experiments/parity_study.py",
                                  ["--preset", "paper", "--dataset", "digits-parity", "--lr", "1.0", "--epochs", "200"]),
    "optimizer_study": ("experiments/optimizer_study.py", []),
    "alignment": ("experiments/alignment.py", []),
    "feedback_schemes": ("experiments/feedback_schemes.py", []),
    "cnn_rules": ("experiments/cnn_rules.py", []),
    "flax_models": ("experiments/flax_models.py", []),
    "sequence_rules": ("experiments/sequence_rules.py", []),
    "rules_benchmark": ("experiments/rules_benchmark.py", []),
    "forward_gradients": ("experiments/forward_gradients.py", []),
    "lecture_xor": ("experiments/lectures/xor.py", ["--rules", "bp,fa,dfa"]),
    "lecture_gradients": ("experiments/lectures/gradients.py", []),
    "lecture_gd_variants": ("experiments/lectures/gd_variants.py", []),
    "lecture_normalization": ("experiments/lectures/normalization.py", []),
    "lecture_batch_loop": ("experiments/lectures/batch_loop.py", []),
    "lecture_regularization": ("experiments/lectures/regularization.py", []),
    "lecture_regression": ("experiments/lectures/regression.py", ["--dataset", "diabetes"]),
    "lecture_spectral": ("experiments/lectures/spectral.py", []),
    "lecture_dropout_norms": ("experiments/lectures/dropout_norms.py", []),
}
_MODULES = {}


def script(path):
    """The experiment script at ``path`` (relative to the repo) as a module, loaded once."""
    if path not in _MODULES:
        _MODULES[path] = load_script(path, "cfg_" + path.replace("/", "_")[:-3])
    return _MODULES[path]


def write(tmp_path, body, name="cfg.py"):
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def test_every_script_has_a_config_and_every_config_is_listed():
    scripts = sorted(str(p.relative_to(ROOT)) for p in [*ROOT.glob("experiments/*.py"),
                                                        *ROOT.glob("experiments/lectures/*.py")])
    assert sorted({s for s, _ in SHIPPED.values()}) == scripts
    assert sorted(p.stem for p in CONFIGS.glob("*.py")) == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_gives_the_args_of_its_documented_command(name):
    path, flags = SHIPPED[name]
    cmd = " ".join(flags)
    assert path in DOCS and cmd in DOCS, f"neither README.md nor docs/*.md has the command {path} {cmd}"
    config = str(CONFIGS / f"{name}.py")
    text = Path(config).read_text()
    assert f"python {path} --config experiments/configs/{name}.py" in text  # the docstring's command
    mod = script(path)
    got = mod.parser().parse_args(["--config", config])
    want = mod.parser().parse_args(flags)
    assert got.config == config
    got.config = None
    if hasattr(mod, "resolve"):  # the study flags default to None: compare the settings the run resolves
        assert mod.resolve(got) == mod.resolve(want)
        assert {k: v for k, v in vars(got).items() if k not in mod.DEFAULT} == \
            {k: v for k, v in vars(want).items() if k not in mod.DEFAULT}
    else:
        assert vars(got) == vars(want)


def test_precedence_flag_over_override_over_file_over_default(tmp_path):
    parser = script("experiments/parity.py").parser
    cfg = write(tmp_path, "def get_config():\n    return {'seeds': 5, 'steps': 200, 'rules': ['bp']}\n")
    args = parser().parse_args(["--config", cfg])
    assert (args.seeds, args.steps, args.rules, args.width, args.config) == (5, 200, ["bp"], 256, cfg)
    args = parser().parse_args(["--config.seeds=6", "--config", cfg])
    assert (args.seeds, args.steps) == (6, 200)
    args = parser().parse_args(["--seeds", "7", "--config", cfg, "--config.seeds", "6"])
    assert (args.seeds, args.steps) == (7, 200)
    # --config.KEY without a file; KEY may use - or _; VALUE parsed with the option's type
    args = parser().parse_args(["--config.batch-size", "16", "--config.eval_every=50", "--config.rules=bp,dfa",
                                "--config.lr=1", "--config.diagnostics=true"])
    assert (args.batch_size, args.eval_every, args.rules, args.config) == (16, 50, ["bp", "dfa"], None)
    assert args.lr == 1.0 and isinstance(args.lr, float) and args.diagnostics is True
    assert parser().parse_args([]).seeds == 8  # nothing leaks into later parsers


def test_parser_defaults_restored_after_parsing_so_config_values_beat_quick(tmp_path):
    mod = script("experiments/parity.py")
    p = mod.parser()
    cfg = write(tmp_path, "def get_config():\n    return {'seeds': 3, 'steps': 1500, 'width': 32}\n")
    args = p.parse_args(["--config", cfg, "--quick"])
    assert p.get_default("seeds") == 8  # the script's default, not the config's
    cli.apply_defaults(args, mod.QUICK)
    # every configured key wins, steps too although it equals the default; --quick sets the rest
    assert (args.seeds, args.width, args.steps, args.n) == (3, 32, 1500, mod.QUICK["n"])


def test_a_repeated_name_in_a_list_is_one_line(tmp_path, capsys):
    main = script("experiments/parity.py").main
    assert "'bp' is repeated in 'bp,fa,bp'" in one_line_exit(capsys, main, ["--rules", "bp,fa,bp"])
    cfg = write(tmp_path, "def get_config():\n    return {'rules': ['dfa', 'dfa']}\n")
    assert "'dfa' is repeated" in one_line_exit(capsys, main, ["--config", cfg])
    for path, flag, value in [("experiments/cnn_rules.py", "--models", "mlp,mlp"),
                              ("experiments/parity_study.py", "--methods", "bp,ntk,bp"),
                              ("experiments/parity_study.py", "--width", "64,64"),
                              ("experiments/optimizer_study.py", "--optimizers", "sgd,sgd"),
                              ("experiments/lectures/normalization.py", "--lrs", "0.1,0.1")]:
        assert "is repeated" in one_line_exit(capsys, script(path).main, [flag, value]), path
    # layer widths may repeat
    assert script("experiments/cnn_rules.py").parser().parse_args(["--mlp-hidden", "8,8"]).mlp_hidden == [8, 8]


def test_load_config_and_apply_config_work_without_files_on_the_command_line(tmp_path):
    p = script("experiments/parity.py").parser()
    assert cli.load_config(write(tmp_path, "def get_config():\n    return {'n': 12}\n")) == {"n": 12}
    assert cli.apply_config(p, {"n": "14", "lr": 2}, "run/config.json") == {"n": 14, "lr": 2.0}
    assert p.parse_args([]).n == 14 and p.parse_args(["--n", "9"]).n == 9
    with pytest.raises(ValueError, match=r"unknown key 'job' in run/config.json; allowed: .*seeds"):
        cli.apply_config(p, {"job": "parity"}, "run/config.json")


BAD_VALUES = [  # (script, config dict literal, substrings of the error line)
    ("parity", "{'seedz': 3}", ["unknown key 'seedz' in", "cfg.py", "allowed: ", "seeds", "batch_size"]),
    ("parity", "{'seeds': 2.5}", ["seeds=2.5", "expected int, got float"]),
    ("parity", "{'seeds': True}", ["seeds=True", "expected int, got bool"]),
    ("parity", "{'seeds': 'many'}", ["seeds='many'", "expected int"]),
    ("parity", "{'lr': '1e-3x'}", ["lr='1e-3x'", "expected float"]),
    ("parity", "{'activation': 3}", ["activation=3", "expected str, got int"]),
    ("parity", "{'diagnostics': 1}", ["diagnostics=1", "expected bool"]),
    ("parity", "{'rules': 'bp'}", []),  # a string for a list option is parsed as on the command line: fine
    ("parity", "{'rules': ['bp', 3]}", ["rules=['bp', 3]", "expected str, got int"]),
    ("parity", "{'rules': ','}", ["rules=','", "empty list", "expected list of str"]),
    ("parity", "{'rules': 7}", ["rules=7", "expected list of str, got int"]),
    ("parity", "{'width': None}", ["width=None", "expected int, got NoneType"]),
    ("cnn_rules", "{'mlp_hidden': [64, 1.5]}", ["mlp_hidden=[64, 1.5]", "expected int, got float"]),
    ("parity_study", "{'preset': 'huge'}", ["preset='huge'", "expected one of default, full, paper, quick"]),
    ("parity_study", "{'quick': True}", ["unknown key 'quick'", "preset"]),
    ("lectures/gd_variants", "{'start': [1.0]}", ["start=[1.0]", "list of float of length 2"]),
]


@pytest.mark.parametrize("name,body,parts", BAD_VALUES)
def test_bad_config_values_are_one_line_errors_naming_key_and_value(tmp_path, capsys, name, body, parts):
    parser = script(f"experiments/{name}.py").parser
    cfg = write(tmp_path, f"def get_config():\n    return {body}\n")
    if not parts:
        assert parser().parse_args(["--config", cfg]).rules == ["bp"]
        return
    err = one_line_exit(capsys, parser().parse_args, ["--config", cfg])
    assert err.startswith(f"{name.split('/')[-1]}.py: error: ")
    for part in parts:
        assert part in err, (part, err)


BAD_FILES = [  # (file body or None for a missing file, substrings of the error line)
    (None, ["config file", "nope.py does not exist"]),
    ("def get_config(:\n    return {}\n", ["cfg.py:1: syntax error in config file"]),
    ("x = 1\n\ndef get_config():\n    return {'n': 1 / 0}\n", ["cfg.py:4: config file raised ZeroDivisionError"]),
    ("import no_such_module_xyz\n", ["cfg.py:1: config file raised ModuleNotFoundError", "no_such_module_xyz"]),
    ("CONFIG = {'n': 4}\n", ["defines no get_config() function"]),
    ("def get_config():\n    return [('n', 4)]\n", ["get_config() returned list, expected a dict"]),
]


@pytest.mark.parametrize("body,parts", BAD_FILES)
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, body, parts):
    cfg = str(tmp_path / "nope.py") if body is None else write(tmp_path, body)
    err = one_line_exit(capsys, script("experiments/parity.py").parser().parse_args, ["--config", cfg])
    assert err.startswith("parity.py: error: ")
    for part in parts:
        assert part in err, (part, err)


@pytest.mark.parametrize("argv,parts", [
    (["--config.seeds"], ["--config.seeds needs a value"]),
    (["--config.=3"], ["name the key"]),
    (["--config.seedz=3"], ["unknown key 'seedz' in --config.seedz", "allowed: "]),
    (["--config.seeds=x"], ["seeds='x' in --config.seeds: expected int"]),
])
def test_bad_overrides_are_one_line_errors(capsys, argv, parts):
    err = one_line_exit(capsys, script("experiments/parity.py").parser().parse_args, argv)
    for part in parts:
        assert part in err, (part, err)


@pytest.mark.parametrize("name,key,flag", [("parity", "seeds", "--seeds"), ("parity", "eval_every", "--eval-every"),
                                           ("parity_study", "seeds", "--seeds")])
def test_range_checks_apply_to_config_values(tmp_path, capsys, name, key, flag):
    main = script(f"experiments/{name}.py").main
    out = str(tmp_path / "run")
    cfg = write(tmp_path, f"def get_config():\n    return {{'{key}': 0}}\n")
    from_config = one_line_exit(capsys, main, ["--config", cfg, "--out", out])
    from_flag = one_line_exit(capsys, main, [flag, "0", "--out", out])
    assert from_config == from_flag and f"{flag} must be >= 1, got 0" in from_config
    assert not Path(out).exists()


def test_help_and_every_parser_know_config():
    for path, _ in SHIPPED.values():
        p = script(path).parser()
        assert isinstance(p, cli.ArgParser) and "--config.KEY=VALUE overrides" in " ".join(p.format_help().split())


def test_end_to_end_config_run_records_the_resolved_values(tmp_path, capsys):
    out = tmp_path / "run"
    config = str(CONFIGS / "parity.py")
    argv = ["--config", config, "--quick", "--config.seeds=2", "--config.rules=bp", "--config.steps=100",
            "--config.eval-every=50", "--out", str(out), "--no-progress"]
    assert script("experiments/parity.py").main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"] == config
    # --config.KEY values and the file's (n=30, equal to the default) beat --quick
    assert (cfg["seeds"], cfg["rules"], cfg["steps"], cfg["eval_every"], cfg["n"]) == (2, ["bp"], 100, 50, 30)
    assert len(json.loads((out / "summary.json").read_text())["results"]) == 2


def test_a_configdict_file_takes_an_arg_after_a_colon(tmp_path, capsys):
    """ml_collections.config_flags' FILE:ARG: get_config(ARG); the spec as given is recorded."""
    cfg = write(tmp_path, "import ml_collections\n\ndef get_config(arg='small'):\n"
                          "    config = ml_collections.ConfigDict()\n    config.seeds = {'small': 3, 'big': 5}[arg]\n"
                          "    config.rules = 'bp,dfa'\n    return config\n")
    parser = script("experiments/parity.py").parser
    args = parser().parse_args(["--config", cfg])
    assert (args.seeds, args.rules, args.config) == (3, ["bp", "dfa"], cfg)
    args = parser().parse_args(["--config", f"{cfg}:big"])
    assert (args.seeds, args.config) == (5, f"{cfg}:big") and cli.given(args) == {"seeds", "rules"}
    err = one_line_exit(capsys, parser().parse_args, ["--config", f"{cfg}:huge"])
    assert "cfg.py:5: config file raised KeyError: 'huge'" in err
    assert "does not exist" in one_line_exit(capsys, parser().parse_args, ["--config", f"{tmp_path}/nope.py:big"])


def test_the_shipped_parity_config_quick_variant_is_quick():
    mod = script("experiments/parity.py")
    got = mod.parser().parse_args(["--config", str(CONFIGS / "parity.py:quick")])
    want = mod.parser().parse_args(["--quick"])
    assert cli.given(got) == {"quick"}
    for args in (got, want):
        cli.apply_defaults(args, mod.QUICK)
    got.config = None
    assert vars(got) == vars(want)


@pytest.mark.parametrize("name,argv,want", [
    ("parity", ["--config.seeds=0x10"], {"seeds": 16}),  # absl's integer parser, through config_flags
    ("parity", ["--config.diagnostics", "false", "--config.n_train=64"], {"diagnostics": False, "n_train": 64}),
    ("parity", ["--config.rules", "dfa"], {"rules": ["dfa"]}),
    ("parity_study", ["--config.width=128", "--config.n=10,20", "--config.dataset=digits-parity"],
     {"width": [128], "n": [10, 20], "dataset": "digits-parity"}),
    ("lectures/gd_variants", ["--config.start=0.5,-2"], {"start": [0.5, -2.0]}),
])
def test_overrides_are_parsed_by_the_fields_type(name, argv, want):
    args = script(f"experiments/{name}.py").parser().parse_args(argv)
    assert {k: getattr(args, k) for k in want} == want and cli.given(args) == set(want)


@pytest.mark.parametrize("argv,parts", [
    (["--config.diagnostics=maybe"], ["diagnostics='maybe' in --config.diagnostics: expected bool"]),
    (["--config.lr=fast"], ["lr='fast' in --config.lr: expected float"]),
    (["--config.width="], ["width='' in --config.width: expected int"]),
    (["--config.rules[0]=fa"], ["unknown key 'rules[0]'"]),
])
def test_bad_override_values_name_the_expected_type(capsys, argv, parts):
    err = one_line_exit(capsys, script("experiments/parity.py").parser().parse_args, argv)
    for part in parts:
        assert part in err, (part, err)
