"""Wall seconds a user waits: ``import fa_jax``, the first name that needs jax, and whole jobs.

    python benchmarks/bench_walls.py                          # imports x5, the main job, cnn_rules
    python benchmarks/bench_walls.py --jobs parity,parity_study --repeats 3

Each figure is a fresh ``python`` subprocess from the repository root, timed with
``time.perf_counter()`` around it (interpreter start-up included), the median of --repeats
(imports) or one run (jobs, their default flags plus ``--no-progress`` and a temporary --out).
``python -c pass`` is measured too, so the import figures can be read net of start-up.
Writes benchmarks/results/bench_walls_<backend>.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = {  # name: code run by python -c
    "python": "pass",
    "import jax": "import jax",
    "import fa_jax": "import fa_jax",
    "import fa_jax; fa_jax.sweep": "import fa_jax; fa_jax.sweep",
}
JOBS = {"parity": "experiments/parity.py", "cnn_rules": "experiments/cnn_rules.py",
        "parity_study": "experiments/parity_study.py", "optimizer_study": "experiments/optimizer_study.py"}


def wall(cmd) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - t0, p.returncode, (p.stdout + p.stderr)[-4000:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", default="parity,cnn_rules", help=f"comma-separated from {', '.join(JOBS)}, or ''")
    p.add_argument("--repeats", type=int, default=5, help="runs per import figure (median)")
    p.add_argument("--out", default=None, help="JSON file (default benchmarks/results/bench_walls_<backend>.json)")
    a = p.parse_args(argv)
    jobs = [j for j in a.jobs.split(",") if j]
    unknown = [j for j in jobs if j not in JOBS]
    if unknown or a.repeats < 1:
        p.exit(2, f"bench_walls.py: error: {'unknown job ' + repr(unknown[0]) if unknown else '--repeats must be >= 1'}"
                  f"; jobs: {', '.join(JOBS)}\n")
    rows = []
    for name, code in IMPORTS.items():
        times = [wall([sys.executable, "-c", code])[0] for _ in range(a.repeats)]
        rows.append({"what": name, "wall_s": statistics.median(times), "runs": times})
    for job in jobs:
        with tempfile.TemporaryDirectory() as d:
            s, rc, tail = wall([sys.executable, JOBS[job], "--no-progress", "--out", str(Path(d) / "run")])
        rows.append({"what": f"python {JOBS[job]}", "wall_s": s, "rc": rc, "tail": tail})
        if rc:
            print(f"{job} failed (exit {rc}):\n{tail}", file=sys.stderr)
    import jax  # after the subprocesses, so this process's own import is not in their way

    backend = jax.default_backend()
    print("| what | wall (s) |\n|---|---|")
    for r in rows:
        print(f"| `{r['what']}` | {r['wall_s']:.2f} |" + ("" if not r.get("rc") else f" failed ({r['rc']}) |"))
    out = Path(a.out or ROOT / "benchmarks" / "results" / f"bench_walls_{backend}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"backend": backend, "jax": jax.__version__, "python": sys.version.split()[0],
                               "repeats": a.repeats, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 1 if any(r.get("rc") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
