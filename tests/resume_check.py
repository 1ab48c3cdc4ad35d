"""Shared check: ``main(["--resume", out])`` of a finished run restores every sweep from its
checkpoints and rewrites the same results and metrics (no duplicated rows)."""

import json

from fa_jax.runs import rundir

# measured times and what is derived from them (throughput) differ between sessions
TIMING = {"wall_s", "compile_s", "run_s", "sweep_seconds", "timing", "seconds", "tokens_per_s", "tokens_per_s_vs_bp"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def assert_resume_reproduces(main, out, *extra):
    before = (_strip(json.loads((out / "summary.json").read_text())), rundir.read_jsonl(out / "metrics.jsonl")
              if (out / "metrics.jsonl").exists() else None)
    assert main(["--resume", str(out), *extra]) == 0
    after = (_strip(json.loads((out / "summary.json").read_text())), rundir.read_jsonl(out / "metrics.jsonl")
             if (out / "metrics.jsonl").exists() else None)
    assert after == before
