"""benchmarks/gpu_suite.py: the smoke suite writes every results file with its figures; the full
suite refuses a CPU in one line; a step that times out is recorded and the suite goes on."""

import json
import os
import subprocess
import sys

from repository import ROOT

JOBS = ("parity", "cnn_rules", "parity_study")


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, "benchmarks/gpu_suite.py", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=timeout)


def test_smoke_suite_writes_every_results_file(tmp_path):
    p = _run("--smoke", "--results-dir", str(tmp_path))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["bench_rules_smoke.json", "bench_sweep_smoke.json",
                                                          "gpu_suite_smoke.json"]

    rules = json.loads((tmp_path / "bench_rules_smoke.json").read_text())
    ratio = {r["rule"]: r["ratio_vs_bp"] for r in rules["results"]}
    assert set(ratio) == {"bp", "fa", "dfa"} and ratio["bp"] == 1.0
    assert 0 < ratio["fa"] < 100 and 0 < ratio["dfa"] < 100
    assert all(r["step_ms"] > 0 and r["tflops"] > 0 for r in rules["results"])

    sweep = json.loads((tmp_path / "bench_sweep_smoke.json").read_text())
    rows = sweep["results"]
    assert sorted((r["scan_len"], r["seeds"]) for r in rows) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(r["us_per_seed_step"] > 0 and r["xla_peak_bytes"] > 0 for r in rows)
    assert sweep["config"]["sizes"] == [16, 8, 4]
    fit = sweep["fit"]  # XLA's estimate at 1 and 2 seeds, extrapolated to this machine's RAM
    assert fit["bytes_per_seed"] > 0 and fit["max_seeds"] > 2 and "physical RAM" in fit["limit"]
    assert sweep["device_memory"] is None  # a CPU reports no device memory

    suite = json.loads((tmp_path / "gpu_suite_smoke.json").read_text())
    assert suite["smoke"] is True and suite["environment"]["backend"] == "cpu"
    assert suite["device_kind"] == "cpu" and suite["jax"] == suite["environment"]["versions"]["jax"]
    assert list(suite["steps"]) == ["bench_rules", "bench_sweep", *JOBS]
    for name in JOBS:
        step = suite["steps"][name]
        assert step["rc"] == 0 and not step["timed_out"] and step["wall_s"] > 0, step
        assert step["command"].startswith(f"python experiments/{name}.py --quick ") and "--no-progress" in step["command"]
        assert "| bp |" in step["stdout_tail"], step["stdout_tail"]
    assert suite["steps"]["bench_rules"]["output"] == str(tmp_path / "bench_rules_smoke.json")
    assert "| step | rc | wall s | output file |" in p.stdout and "| parity_study | 0 |" in p.stdout


def test_full_suite_on_a_cpu_is_a_one_line_refusal(tmp_path):
    p = _run("--results-dir", str(tmp_path), timeout=120)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert "\n" not in err and err.startswith("gpu_suite.py: error: jax's default backend is 'cpu', not 'gpu'"), err
    assert "--allow-cpu" in err and not list(tmp_path.iterdir())


def test_unknown_step_is_a_one_line_error():
    p = _run("--only", "bench_rules,nope", timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == ("gpu_suite.py: error: --only: unknown step 'nope'; known: bench_rules, bench_sweep, "
                                "parity, cnn_rules, parity_study")


def test_a_step_that_times_out_is_recorded_and_the_suite_goes_on(tmp_path):
    p = _run("--smoke", "--only", "parity,cnn_rules", "--timeout", "0.01", "--results-dir", str(tmp_path),
             timeout=120)
    assert p.returncode == 1, p.stderr
    steps = json.loads((tmp_path / "gpu_suite_smoke.json").read_text())["steps"]
    assert list(steps) == ["parity", "cnn_rules"]
    assert all(s["rc"] == 124 and s["timed_out"] and s["timeout_s"] == 0.01 for s in steps.values()), steps
    assert "| cnn_rules | 124 (timed out) |" in p.stdout
