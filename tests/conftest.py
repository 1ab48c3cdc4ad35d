import os
import zlib

# Tests check numbers, not speed: XLA's CPU backend at optimization level 0 compiles several
# times faster (e.g. a small conv net's init: 11 s -> 1.5 s) and computes the same results.
# Subprocesses started by the tests inherit this through os.environ.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402
import pytest


@pytest.fixture
def x64():
    """Run a test in float64 (exactness tests); restores float32 afterwards."""
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


@pytest.fixture
def keys(request):
    """Fresh, deterministic keys per test: ``keys(n)`` -> n distinct keys."""
    base = jax.random.key(zlib.crc32(request.node.name.encode()))  # stable across processes
    return lambda n: list(jax.random.split(base, n))
