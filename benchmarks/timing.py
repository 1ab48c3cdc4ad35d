"""Shared benchmark plumbing: precision modes, median timing, environment, JSON output."""

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import jax

from fa_jax.runs import rundir

PRECISIONS = {
    "float32": "highest",          # true fp32 matmuls
    "tf32": "tensorfloat32",       # TF32 matmuls on GPUs that have them (fp32 elsewhere)
    "bf16": "bfloat16",            # bf16 matmul inputs, fp32 accumulation
}


def precision(name: str):
    """Context manager setting ``jax.default_matmul_precision`` for a named mode."""
    if name not in PRECISIONS:
        raise SystemExit(f"error: unknown precision {name!r}; known: {', '.join(PRECISIONS)}")
    return jax.default_matmul_precision(PRECISIONS[name])


def median_time(fn, *args, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall seconds of ``fn(*args)`` (outputs blocked on), warm-up calls excluded."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def environment(precision_name: str) -> dict:
    """The run record of :func:`fa_jax.runs.rundir.environment` plus this benchmark's precision mode."""
    return {**rundir.environment(), "precision": precision_name, "matmul_precision": PRECISIONS[precision_name]}


def flops_of(compiled) -> float | None:
    """FLOPs per call from XLA's cost analysis of a compiled function (None if unavailable)."""
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"])
    except Exception:
        return None


def memory_of(compiled) -> dict | None:
    """XLA's memory analysis of a compiled function: argument/output/temp bytes and their sum."""
    try:
        m = compiled.memory_analysis()
        out = {k: int(getattr(m, f"{k}_size_in_bytes")) for k in ("argument", "output", "temp", "generated_code")}
    except Exception:
        return None
    out["peak_estimate"] = out["argument"] + out["output"] + out["temp"]
    return out


def device_memory() -> dict | None:
    """Peak and limit bytes reported by the device (GPUs; None on CPU)."""
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    if not stats:
        return None
    return {"peak_bytes_in_use": stats.get("peak_bytes_in_use"), "bytes_limit": stats.get("bytes_limit")}


def base_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--precision", default="float32", choices=list(PRECISIONS))
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", default=default_out, help="JSON results file")
    return p


def write(path, payload) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


@contextlib.contextmanager
def nullcontext():
    yield
