"""Every GPU figure the performance docs quote, in one command (one NVIDIA GPU, about 8 minutes).

    bash benchmarks/gpu_suite.sh                        # installs fa_jax (--no-deps), then runs this
    python benchmarks/gpu_suite.py --only bench_rules,parity
    python benchmarks/gpu_suite.py --smoke              # the same steps at toy sizes (CPU, about a minute)

Steps, each a subprocess from the repository root with its own timeout (--timeout overrides all):

    bench_rules   benchmarks/bench_rules.py --sizes small,medium,large --precision tf32 (every rule)
    bench_sweep   benchmarks/bench_sweep.py --seeds 1,4,16,64,256,1024 --scan 1,200 --precision tf32
    parity        experiments/parity.py (the main job, its defaults)
    cnn_rules     experiments/cnn_rules.py (its defaults)
    parity_study  experiments/parity_study.py --full (the whole grid)

Writes <results-dir>/bench_rules_gpu.json and bench_sweep_gpu.json (the benchmarks' own files), and
gpu_suite_gpu.json: the environment, and per step its command line, exit code, wall seconds
(time.perf_counter() around the subprocess: Python start-up and imports included) and the tail of
its output (the printed tables). The experiments' run directories go to a temporary folder. A step
that fails or times out is recorded and the suite goes on; the exit code is 1 if any step failed.
--smoke runs the experiments' --quick settings (fewer models and cells, no checkpoints; XLA at
optimization level 0), names the files *_smoke.json and writes them to a new temporary folder
unless --results-dir is given.
Without --smoke the suite refuses (exit 2) to run when jax's default backend is not 'gpu', unless
--allow-cpu is given (the files are then named *_<backend>_suite.json).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISION = "tf32"
STDOUT_LINES, STDERR_LINES = 300, 30  # parity_study --full prints a 210-row table
NO_CKPT = ["--checkpoint-every", "0"]  # smoke: a checkpoint costs more than a toy sweep
STEPS = {  # name: (command, its --smoke command, default timeout in seconds); benchmarks write their own JSON
    "bench_rules": (["benchmarks/bench_rules.py", "--sizes", "small,medium,large", "--precision", PRECISION],
                    ["benchmarks/bench_rules.py", "--sizes", "small", "--rules", "bp,fa,dfa", "--repeats", "2",
                     "--precision", PRECISION], 240),
    "bench_sweep": (["benchmarks/bench_sweep.py", "--seeds", "1,4,16,64,256,1024", "--scan", "1,200",
                     "--precision", PRECISION],
                    ["benchmarks/bench_sweep.py", "--seeds", "1,2", "--scan", "1,2", "--sizes", "16,8,4",
                     "--repeats", "2", "--precision", PRECISION], 180),
    "parity": (["experiments/parity.py"], ["experiments/parity.py", "--quick", *NO_CKPT], 120),
    "cnn_rules": (["experiments/cnn_rules.py"],
                  ["experiments/cnn_rules.py", "--quick", "--models", "mlp", *NO_CKPT], 300),  # conv nets: tests
    "parity_study": (["experiments/parity_study.py", "--full"],
                     ["experiments/parity_study.py", "--quick", "--methods", "bp,dfa", "--n", "6", *NO_CKPT], 600),
}
PROBE = "import json, sys, timing; print(json.dumps(timing.environment(sys.argv[1])))"


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser():
    p = Parser(prog="gpu_suite.py", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="toy sizes (runs on a CPU in about a minute); *_smoke.json")
    p.add_argument("--only", default=None, help=f"comma-separated steps, from {', '.join(STEPS)} (default: all)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="per-step limit (default: " + ", ".join(f"{k} {v[2]}" for k, v in STEPS.items()) + ")")
    p.add_argument("--results-dir", default=None,
                   help="where the JSON files go (default: benchmarks/results; with --smoke a new temporary folder)")
    p.add_argument("--allow-cpu", action="store_true", help="run the full sizes even if jax has no GPU")
    return p


def child_env(smoke: bool) -> dict:
    """This environment, with the repository first on PYTHONPATH (the scripts import fa_jax from here);
    smoke: XLA at optimization level 0, which compiles several times faster (its timings mean nothing)."""
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    if smoke and "--xla_backend_optimization_level" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
    return env


def tail(text, n: int) -> str:
    text = text.decode(errors="replace") if isinstance(text, bytes) else (text or "")
    return "\n".join(text.rstrip().splitlines()[-n:])


def probe(env) -> dict:
    """benchmarks/timing.py's environment record, read in a short-lived process so that this one
    never holds the GPU (each step's jax preallocates most of its memory)."""
    p = subprocess.run([sys.executable, "-c", PROBE, PRECISION], cwd=ROOT / "benchmarks",
                       env={**env, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        last = tail(p.stderr, 1) or f"exit code {p.returncode}"
        raise SystemExit(f"gpu_suite.py: error: cannot start jax: {last}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_step(name, argv, timeout, env) -> dict:
    """Run ``python argv`` from the repository root; its record (wall includes start-up and imports)."""
    cmd = [sys.executable, *argv]
    print(f"[{name}] {shlex.join(argv)}  (timeout {timeout:g} s)", flush=True)
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out, err, timed_out = p.returncode, p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:
        rc, out, err, timed_out = 124, e.stdout, e.stderr, True
    wall = time.perf_counter() - t0
    rec = {"command": shlex.join(["python", *argv]), "rc": rc, "timed_out": timed_out, "wall_s": round(wall, 2),
           "timeout_s": timeout, "stdout_tail": tail(out, STDOUT_LINES), "stderr_tail": tail(err, STDERR_LINES)}
    status = "timed out" if timed_out else f"rc {rc}"
    print(f"[{name}] {status}, {wall:.1f} s", flush=True)
    if rc != 0:
        print(rec["stderr_tail"] or rec["stdout_tail"], file=sys.stderr, flush=True)
    return rec


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    steps = list(STEPS) if a.only is None else [s for s in a.only.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        what = f"unknown step {', '.join(map(repr, unknown))}" if unknown else "no step given"
        parser().error(f"--only: {what}; known: {', '.join(STEPS)}")
    if a.timeout is not None and not a.timeout > 0:
        parser().error(f"--timeout must be > 0, got {a.timeout:g}")
    env = child_env(a.smoke)
    record = probe(env)
    backend = record["backend"]
    if not a.smoke and backend != "gpu" and not a.allow_cpu:
        print(f"gpu_suite.py: error: jax's default backend is {backend!r}, not 'gpu' (device {record['device_kind']!r}); "
              "run on a GPU, or pass --smoke (toy sizes) or --allow-cpu", file=sys.stderr)
        return 2
    tag = "smoke" if a.smoke else ("gpu" if backend == "gpu" else f"{backend}_suite")
    results = Path(a.results_dir or (tempfile.mkdtemp(prefix="gpu_suite_smoke-") if a.smoke
                                     else ROOT / "benchmarks" / "results")).resolve()  # the steps run in ROOT
    results.mkdir(parents=True, exist_ok=True)
    suite_file = results / f"gpu_suite_{tag}.json"
    print(f"device: {record['device_kind']} ({backend}), jax {record['versions']['jax']}; "
          f"steps {', '.join(steps)} -> {results}", flush=True)
    done = {}
    with tempfile.TemporaryDirectory(prefix="gpu_suite_runs-") as runs:
        for name in steps:
            full, smoke, default_timeout = STEPS[name]
            argv = list(smoke if a.smoke else full)
            if argv[0].startswith("benchmarks/"):
                out = results / f"{name}_{tag}.json"
                argv += ["--out", str(out)]
            else:
                out = suite_file
                argv += ["--no-progress", "--out", str(Path(runs) / name)]
            done[name] = {**run_step(name, argv, a.timeout or default_timeout, env), "output": str(out)}
    payload = {"environment": record, "device_kind": record["device_kind"], "jax": record["versions"]["jax"],
               "smoke": a.smoke, "steps": done}
    suite_file.write_text(json.dumps(payload, indent=2) + "\n")
    print("\n| step | rc | wall s | output file |\n|---|---|---|---|")
    for name, r in done.items():
        rc = f"{r['rc']} (timed out)" if r["timed_out"] else str(r["rc"])
        print(f"| {name} | {rc} | {r['wall_s']:.1f} | {r['output']} |")
    print(f"wrote {suite_file}")
    return 1 if any(r["rc"] != 0 for r in done.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
