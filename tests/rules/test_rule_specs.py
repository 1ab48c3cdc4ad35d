"""Rule specs have one normal form (fj.rules.normalize): the resolved rule's name, the items of a
--rules list (a comma inside parentheses stays in its spec, one rule spelled twice is a repeated
item), config.json and the checkpoint folders all use it."""

import argparse
import json

import pytest
from error_check import one_line_error, one_line_exit
from repository import load_script

import fa_jax as fj
from fa_jax.errors import InputError
from fa_jax.runs import cli, rundir


@pytest.fixture(scope="module")
def parity():
    return load_script("experiments/parity.py", "specs_parity")


@pytest.mark.parametrize("spellings,normal", [
    (["kp", "kp()", "kp ()", " kp ", "kp( )", "kp(lam=0.999)", "kp(b0=random)", "kp(b0='random'; lam=0.999)"], "kp"),
    (["kp(lam=0.9)", "kp(lam=0.90)", "kp( lam = .9 )", "kp(lam=9e-1)", "kp(lam=0.9,)"], "kp(lam=0.9)"),
    (["wm(eta=0.1;d=0.1)", "wm(d=0.1;eta=0.1)", "wm(eta=1e-1, d=0.1)", "wm(d=0.1,eta=0.10)"], "wm(d=0.1;eta=0.1)"),
    (["kp(b0=w)", "kp(b0='w')", 'kp(b0="w")', "kp(b0=w;lam=0.999)"], "kp(b0=w)"),
    (["kp(lam=1)", "kp(lam=1.0)", "kp(lam=1.)"], "kp(lam=1.0)"),  # an int for a float option is that float
    (["dfa(conv=dense)", "dfa()", "dfa(k=None)"], "dfa"),
    (["dfa(conv=shared)", "dfa(k=None;conv='shared')"], "dfa(conv=shared)"),
    (["pepita(last=standard, f_scale=5)", "pepita(f_scale=5.0;last=standard;output=auto)"],
     "pepita(f_scale=5.0;last=standard)"),
    (["bp", "bp()", " bp"], "bp"),
])
def test_every_spelling_of_a_rule_has_one_normal_form_and_resolves_to_one_rule(spellings, normal):
    assert [fj.rules.normalize(s) for s in spellings] == [normal] * len(spellings)
    assert fj.rules.normalize(normal) == normal  # idempotent
    rules = [fj.rules.get(s) for s in spellings]
    assert all(r is rules[0] for r in rules) and rules[0].name == normal
    if "(" not in normal:
        assert rules[0] is fj.rules.RULES[normal]  # the defaults spelled out are the plain rule


@pytest.fixture(scope="module")
def probe():
    """A rule factory with a string, a float, an int and a bool option."""

    def make(s: str = "x", f: float = 0.5, n: int = 2, on: bool = False) -> fj.Rule:
        return fj.Rule("spec_probe", fj.rules.bp)

    fj.rules.register_factory("spec_probe", make, replace=True)
    return "spec_probe"


@pytest.mark.parametrize("spec,normal", [
    ("spec_probe(s=x)", "spec_probe"), ("spec_probe(s=\"x\")", "spec_probe"),
    ("spec_probe(s='a;b', f=0.25)", "spec_probe(f=0.25;s='a;b')"), ("spec_probe(s='a,b')", "spec_probe(s='a,b')"),
    ("spec_probe(s='1')", "spec_probe(s='1')"), ("spec_probe(s=1)", "spec_probe(s=1)"),
    ("spec_probe(s='None')", "spec_probe(s='None')"), ("spec_probe(s=None)", "spec_probe(s=None)"),
    ("spec_probe(s= a b )", "spec_probe(s='a b')"), ("spec_probe(s=\"it's\")", "spec_probe(s=\"it's\")"),
    ("spec_probe(s=a.b)", "spec_probe(s='a.b')"), ("spec_probe(s=)", "spec_probe(s='')"),
    ("spec_probe(n=2)", "spec_probe"), ("spec_probe(n=2.0)", "spec_probe(n=2.0)"), ("spec_probe(n=-3)", "spec_probe(n=-3)"),
    ("spec_probe(on=False)", "spec_probe"), ("spec_probe(on=0)", "spec_probe(on=0)"), ("spec_probe(on=True)", "spec_probe(on=True)"),
    ("spec_probe(f=-0.0)", "spec_probe(f=-0.0)"), ("spec_probe(f=1e-10)", "spec_probe(f=1e-10)"),
])
def test_option_values_are_spelled_as_their_literal_and_bare_words_unquoted(probe, spec, normal):
    assert fj.rules.normalize(spec) == normal
    assert fj.rules.normalize(normal) == normal
    assert fj.rules.parse_spec(normal) == fj.rules.parse_spec(spec) or "(" not in normal


@pytest.mark.parametrize("spec,match", [
    ("kp(lam=0.9;lam=0.8)", "rule 'kp(lam=0.9;lam=0.8)': option 'lam' is given twice"),
    ("kp(lam=0.9, lam=0.9)", "option 'lam' is given twice"),
    ("kp(lam=0.9", "unbalanced parentheses"),
    ("kp)", "unbalanced parentheses"),
    ("kp(lam=(0.9)", "unbalanced parentheses"),
    ("kp(b0='w)", "unclosed quote"),
    ("kp(lam=0.9)(b0=w)", "a spec is name(key=value; ...)"),
    ("(lam=0.9)", "a spec is name(key=value; ...)"),
    ("kp((lam=0.9))", "options are written key=value"),
    ("kp(lam)", "options are written key=value, got 'lam'"),
    ("KP", "unknown rule 'KP'; known: "),
    ("KP(lam=0.9)", "unknown rule 'KP'"),
    ("bp(lam=1)", "rule 'bp' takes no options"),
    ("kp(mu=1)", "rule 'kp' has no option 'mu'; its options: lam, b0"),
    ("kp(lam=[0.9])", "rule 'kp': option lam=[0.9] is not a number, string, bool or None"),
    ("kp(lam=1e999)", "rule 'kp': option lam=inf is not a finite number"),
    ("kp(lam=1.5)", "kp: lam must be in (0, 1], got 1.5"),  # the factory's own check
])
def test_bad_specs_are_one_line_errors(spec, match):
    one_line_error(lambda: fj.rules.normalize(spec), match, InputError)
    one_line_error(lambda: fj.rules.get(spec), match, InputError)


def test_a_rule_list_splits_at_commas_outside_parentheses_and_refuses_one_rule_twice(probe):
    parse = cli.rule_list()
    assert parse("bp,wm(eta=0.1,d=0.1)") == ["bp", "wm(d=0.1;eta=0.1)"]
    assert parse(" bp , kp( lam = .9 ) ,") == ["bp", "kp(lam=0.9)"]
    assert parse("spec_probe(s='a,b'),bp") == ["spec_probe(s='a,b')", "bp"]
    for text, match in [("kp,kp()", "'kp()' is 'kp' again (both are the rule 'kp')"),
                        ("kp(lam=0.9),kp(lam=0.90)", "'kp(lam=0.90)' is 'kp(lam=0.9)' again"),
                        ("wm(eta=0.1;d=0.1),wm(d=0.1,eta=0.1)", "again (both are the rule 'wm(d=0.1;eta=0.1)')"),
                        ("bp,bp", "'bp' is repeated"), (",", "empty list ','"), ("", "empty list"),
                        ("bp,kp(lam=0.9", "unbalanced parentheses"), ("bp,nope", "unknown rule 'nope'")]:
        with pytest.raises(argparse.ArgumentTypeError, match=match.replace("(", r"\(").replace(")", r"\)")):
            parse(text)


def test_scripts_refuse_one_rule_spelled_twice_up_front(parity, capsys, tmp_path):
    out = tmp_path / "run"
    for rules in ("kp,kp()", "kp(lam=0.9),kp(lam=0.90)", "bp,kp(lam=0.9"):
        err = one_line_exit(capsys, parity.main, ["--quick", "--rules", rules, "--out", str(out)])
        assert err.startswith("parity.py: error: argument --rules: ")
    assert not out.exists()
    args = parity.parser().parse_args(["--rules", "bp, wm(eta=0.1, d=0.1),kp( lam = .9 )"])
    assert args.rules == ["bp", "wm(d=0.1;eta=0.1)", "kp(lam=0.9)"]  # what config.json records


def test_a_config_file_gives_rules_in_their_normal_form_and_refuses_one_twice(parity, capsys, tmp_path):
    good, bad, text = tmp_path / "good.py", tmp_path / "bad.py", tmp_path / "text.py"
    good.write_text("def get_config():\n    return {'rules': ['bp', 'kp( lam=0.90 )', 'wm(eta=0.1,d=0.1)']}\n")
    bad.write_text("def get_config():\n    return {'rules': ['kp', 'kp()']}\n")
    text.write_text("def get_config():\n    return {'rules': 'bp,wm(eta=0.1,d=0.1)'}\n")
    assert parity.parser().parse_args(["--config", str(good)]).rules == ["bp", "kp(lam=0.9)", "wm(d=0.1;eta=0.1)"]
    assert parity.parser().parse_args(["--config", str(text)]).rules == ["bp", "wm(d=0.1;eta=0.1)"]
    assert parity.parser().parse_args(["--config.rules", "kp(lam=1),bp"]).rules == ["kp(lam=1.0)", "bp"]
    err = one_line_exit(capsys, parity.parser().parse_args, ["--config", str(bad)])
    assert "'kp()' is 'kp' again (both are the rule 'kp')" in err
    err = one_line_exit(capsys, parity.parser().parse_args, ["--config.rules", "bp,nope"])
    assert "unknown rule 'nope'" in err


def test_a_resumed_run_reads_its_rules_in_their_normal_form(parity, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"job": "parity", "rules": ["bp", "wm(eta=0.1; d=0.1)"]}))
    assert parity.parser().parse_args(["--resume", str(tmp_path)]).rules == ["bp", "wm(d=0.1;eta=0.1)"]


def test_checkpoint_folders_are_one_per_name(tmp_path):
    folder = lambda name: rundir.checkpointing(tmp_path, name)["checkpoint"].name  # noqa: E731
    names = ["bp", "kp(lam=0.5)", "kp_lam=0.5", "kp(b0='a b')", "kp(b0='a(b')", "kp(b0='a_b')", "a b", "a_b",
             "a/b", "a%2Fb", ".", "..", ".x", "%2Ex", "method=dfa n=20 k=3", "resnet20-wm(d=0.1;eta=0.1)"]
    folders = [folder(n) for n in names]
    assert len(set(folders)) == len(names), folders
    assert folder("bp") == "bp" and folder("kp(lam=0.5)") == "kp(lam=0.5)" and folder("rf_gaussian") == "rf_gaussian"
    assert all("/" not in f and f not in (".", "..") and not f.startswith(".") for f in folders)
    assert len(folder("x" * 400)) <= 200 and folder("x" * 400) != folder("x" * 401)
    one_line_error(lambda: rundir.checkpointing(tmp_path, ""), "a sweep name must be non-empty", InputError)
