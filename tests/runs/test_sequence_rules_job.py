"""experiments/sequence_rules.py: a tiny end-to-end run (lm, transformer and GRU, bp and
dfa: table, summary, curves, per-block alignment, samples, the macro/micro labels, resume), a
modadd cell without diagnostics, and its one-line CLI errors."""

import json
import re

import pytest
from error_check import one_line_exit
from repository import load_script
from resume_check import assert_resume_reproduces

import fa_jax as fj

sequence_rules = load_script("experiments/sequence_rules.py", "sequence_rules")

CELLS = [(t, m, r) for t in ("lm",) for m, r in [("transformer", "bp"), ("transformer-macro", "dfa"),
                                                          ("transformer-micro", "dfa"), ("gru", "bp"), ("gru", "dfa")]]


def test_quick_run_writes_tables_alignment_samples_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert sequence_rules.main(["--quick", "--tasks", "lm", "--models", "transformer,gru", "--rules", "bp,dfa",
                                "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "### lm: val bits/char (lower is better)" in printed
    assert ("| task | model | params | rule | val bits/char (mean ± std) | worst seed | diverged | tokens/s | vs bp | "
            "seconds |") in printed
    for t, m, r in CELLS:
        assert re.search(rf"^\| {t} \| {m} \| [\d,]+ \| {r} \| ", printed, flags=re.MULTILINE), (t, m, r)
    assert "transformer: tokens/s vs bp (mean over lm): dfa (macro) " in printed and "time: " in printed

    summary = json.loads((out / "summary.json").read_text())
    rows = summary["by_task_model_rule"]
    assert [(s["task"], s["model"], s["rule"]) for s in rows] == CELLS
    assert summary["metrics"] == {"lm": "val bits/char"}
    for s in rows:
        assert s["seeds"] == 2 and s["diverged"] == 0 and len(s["per_seed"]) == 2 and s["tokens_per_s"] > 0
        assert s["arch"] == s["model"].split("-")[0] and s["T"] == (16 if s["task"] == "lm" else 7)
        if s["task"] == "lm":  # bits per character: near log2(97) = 6.6 after a few steps
            assert s["metric"] == "val bits/char" and 3 < s["mean"] < 9 and s["worst"] == max(s["per_seed"])
        else:
            assert s["metric"] == "test acc" and 0 <= s["mean"] <= 1 and s["worst"] == min(s["per_seed"])
        bp = next(b for b in rows if (b["task"], b["arch"], b["rule"]) == (s["task"], s["arch"], "bp"))
        assert s["tokens_per_s_vs_bp"] == pytest.approx(s["tokens_per_s"] / bp["tokens_per_s"])
        assert s["params"] == bp["params"]  # the points are markers: the same params
    assert summary["files"] == ["curves_lm.png", "alignment.md", "alignment.png", "samples.md"]
    for f in ("curves_lm.png", "alignment.png"):
        assert (out / f).stat().st_size > 1000

    metric_rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metric_rows) == len(CELLS) * 2 * 2  # cells x seeds x evaluations
    assert sorted({(r["task"], r["model"], r["rule"]) for r in metric_rows}) == sorted(CELLS)
    assert all(len(r["grad_alignment_deg"]) == 7 for r in metric_rows)  # 6 kernels of block_0 or cell_0, unembed
    config = json.loads((out / "config.json").read_text())
    assert [p for p, _ in config["dfa_points"]["lm/transformer-micro"]] == [
        "block_0/after_attn", "block_0/mlp_hidden", "block_0/out"]
    assert [p for p, _ in config["dfa_points"]["lm/transformer-macro"]] == ["block_0/out"]
    assert config["job"] == "sequence_rules" and config["corpus"]["n_chars"] > 100_000

    alignment = (out / "alignment.md").read_text()
    assert "### lm, transformer: angle between the rule's weight update and BP's per block" in alignment
    assert "| model | rule | seeds | block_0 | unembed |" in alignment and "| model | rule | seeds | cell_0 | unembed |" in alignment
    assert re.search(r"^\| transformer-micro \| dfa \| 2 \| [\d.]+ ± [\d.]+° \| 0\.0 ± 0\.0° \|", alignment, flags=re.MULTILINE)
    assert re.search(r"^\| transformer \| bp \| 2 \| 0\.0 ± 0\.0° \| 0\.0 ± 0\.0° \|", alignment, flags=re.MULTILINE)
    assert "| rule | seeds | block_0/after_attn | block_0/mlp_hidden | block_0/out |" in alignment
    assert "### lm, gru: angle between the signal at each DFA point" in alignment

    samples = (out / "samples.md").read_text()
    prompt = fj.data.text.decode(fj.data.char_lm(16).x_test[0])
    assert f"```\n{prompt}\n```" in samples
    heads = re.findall(r"^## (\S+) / (\S+) \(seed 0: [\d.]+ val bits/char\)$", samples, flags=re.MULTILINE)
    assert heads == [(m, r) for t, m, r in CELLS if t == "lm"]
    assert samples.count("### greedy\n") == samples.count("### temperature 0.8\n") == 5
    greedy = re.findall(r"### greedy\n\n```\n(.*?)\n```", samples, flags=re.DOTALL)
    assert len(greedy) == 5 and all(len(g) == 40 for g in greedy)

    assert_resume_reproduces(sequence_rules.main, out, "--no-progress")
    assert (out / "samples.md").read_text() == samples  # the restored params write the same text


def test_a_modadd_cell_without_diagnostics_or_bp(tmp_path, capsys):
    out = tmp_path / "run"
    assert sequence_rules.main(["--quick", "--tasks", "modadd", "--models", "elman", "--rules", "kp", "--seeds", "1",
                                "--no-diagnostics", "--out", str(out), "--no-progress", "--checkpoint-every", "0"]) == 0
    printed = capsys.readouterr().out
    assert "### modadd: test acc (higher is better)" in printed and "| modadd | elman |" in printed
    assert "elman: tokens/s vs bp (mean over modadd): no bp to compare" in printed
    (row,) = json.loads((out / "summary.json").read_text())["by_task_model_rule"]
    assert (row["model"], row["rule"], row["T"], row["tokens_per_s_vs_bp"]) == ("elman", "kp", 3, None)
    assert 0 <= row["mean"] <= 1
    assert not (out / "alignment.md").exists() and not (out / "samples.md").exists()
    assert (out / "curves_modadd.png").stat().st_size > 1000


@pytest.mark.parametrize("argv,match", [
    (["--tasks", "lm,wiki"], "unknown task 'wiki'; known: lm, recall, modadd"),
    (["--models", "gru,lstm"], "unknown model 'lstm'; known: transformer, gru, elman"),
    (["--points", "nano"], "unknown --points value 'nano'; known: macro, micro"),
    (["--error-at", "middle"], "--error-at must be one of logits, last_block, got 'middle'"),
    (["--rules", "bp,drtp", "--error-at", "last_block"],
     "--rules drtp with --error-at last_block: drtp sends the target, not an error"),
    (["--d-model", "16", "--n-heads", "3"], "--n-heads 3 does not divide --d-model 16"),
    (["--rules", "bp,pepita"], "--rules: rule 'pepita' does not run on these sequence models"),
    (["--rules", "ntk"], "--rules: rule 'ntk' does not run on these sequence models"),
    (["--rules", "bp,sgd"], "unknown rule 'sgd'"),
    (["--recall-pairs", "20"], "--recall-pairs 20 > --recall-keys 8"),
    (["--modulus", "1"], "--modulus must be >= 2, got 1"),
    (["--train-fraction", "1.5"], "--train-fraction must be in (0, 1), got 1.5"),
    (["--samples", "-1"], "--samples must be >= 0 (0: none), got -1"),
    (["--steps", "25", "--eval-every", "10"], "--steps 25 is not a multiple of --eval-every 10"),
])
def test_bad_arguments_are_one_line_errors(argv, match, capsys, tmp_path):
    err = one_line_exit(capsys, sequence_rules.main, ["--quick", *argv, "--out", str(tmp_path / "x")])
    assert err.startswith("sequence_rules.py: error: ") and match in err, err
    assert not (tmp_path / "x").exists()
