"""Compiling and counting compilations.

``with count_compiles() as c: ...; c.count`` listens to JAX's own monitoring events, so it
counts every program the block had to build: a backend compilation
(``/jax/core/compile/backend_compile_duration``) or a load from JAX's persistent compilation
cache (``/jax/compilation_cache/cache_retrieval_time_sec``, when that cache is on; it replaces
a compilation). Used to prove that sweeps with other seeds or learning rates reuse the
compiled program in memory. :func:`compile_once_run` compiles a program that runs once (the
parameter and feedback draws) at a lower backend optimization level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import jax
from jax import monitoring, stages

# XLA's backend (LLVM) optimization level for programs run once: the vmapped parameter and
# feedback draws of a ResNet-20 (3 seeds) compile in 4-6 s at level 1 instead of 10-17 s at the
# default level on a 2-core x86 CPU, to the same bits there (2115 arrays of 5 models x 5 rules
# checked). Level 0 is faster still but does not fuse x * (b - a) + a into one multiply-add as
# the default level does, so U(a, b) draws would move by an ulp.
RUN_ONCE_OPTIONS = {"xla_backend_optimization_level": 1}

_EVENTS = ("/jax/core/compile/backend_compile_duration", "/jax/compilation_cache/cache_retrieval_time_sec")
_ACTIVE: list["CompileCount"] = []
_REGISTERED = False


@dataclasses.dataclass
class CompileCount:
    count: int = 0
    seconds: float = 0.0


def _listener(name, duration, **kwargs):
    if name in _EVENTS:
        for c in _ACTIVE:
            c.count += 1
            c.seconds += duration


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileCount]:
    """Context manager yielding a :class:`CompileCount` (compilations and their seconds)."""
    global _REGISTERED
    if not _REGISTERED:
        monitoring.register_event_duration_secs_listener(_listener)
        _REGISTERED = True
    c = CompileCount()
    _ACTIVE.append(c)
    try:
        yield c
    finally:
        _ACTIVE.remove(c)


def compile_once_run(jitted: stages.Wrapped, *args: Any) -> tuple[stages.Compiled, float]:
    """``(compiled, seconds)``: ``jitted`` lowered for ``args`` and compiled with
    :data:`RUN_ONCE_OPTIONS` (a backend that refuses them compiles with its defaults)."""
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    try:
        compiled = lowered.compile(RUN_ONCE_OPTIONS)
    except (jax.errors.JaxRuntimeError, ValueError, TypeError):
        compiled = lowered.compile()
    return compiled, time.perf_counter() - t0
