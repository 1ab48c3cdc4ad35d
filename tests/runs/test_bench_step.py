"""benchmarks/bench_step.py: a tiny timing run writes one row per rule with positive times and a
ratio; --hlo prints the op counts of fa_jax's and the reference's compiled FA backward."""

import json
import os
import subprocess
import sys

from repository import ROOT


def _run(*args):
    return subprocess.run([sys.executable, "benchmarks/bench_step.py", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=300)


def test_a_tiny_run_writes_a_row_per_rule(tmp_path):
    out = tmp_path / "step.json"
    p = _run("--sizes", "tiny", "--rounds", "2", "--repeats", "3", "--out", str(out))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert [(r["size"], r["rule"]) for r in rows] == [("tiny", "bp"), ("tiny", "fa")]
    for r in rows:
        assert r["fa_jax_ms"] > 0 and r["flax_ms"] > 0 and r["rounds"] == 2
        assert 0 < r["ratio_min"] <= r["ratio_median"] <= r["ratio_max"]
    assert "| tiny 20-16-16-4 b8 | fa |" in p.stdout


def test_hlo_prints_op_counts_of_both_implementations():
    p = _run("--hlo")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "| program | impl | dot | transpose | copy | fusion | broadcast | reduce |" in p.stdout
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in p.stdout.splitlines()
            if line.startswith("| ") and "| program |" not in line]
    programs = ("hidden layer 256x256", "first layer 784x256", "whole FA step 784-256-256-256-10")
    assert [(r[0].split(",")[0], r[1]) for r in rows] == [(n, i) for n in programs for i in ("fa_jax", "flax")]
    for r in rows:  # dot ... reduce, HLO instructions, jaxpr equations: counts, with at least one dot
        assert len(r) == 10 and all(c.isdigit() for c in r[2:]) and int(r[2]) >= 1, r
    for n in programs:
        assert any(line.startswith(n) and "compiled modules" in line for line in p.stdout.splitlines()), n


def test_an_unknown_size_is_a_one_line_error(tmp_path):
    p = _run("--sizes", "huge", "--out", str(tmp_path / "o.json"))
    assert p.returncode != 0 and "unknown size 'huge'; known: tiny, small, medium" in p.stderr
    assert not (tmp_path / "o.json").exists()
