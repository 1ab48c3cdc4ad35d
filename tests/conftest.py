import os
import zlib

# Tests check numbers, not speed: XLA's CPU backend at optimization level 0 compiles several
# times faster (e.g. a small conv net's init: 11 s -> 1.5 s) and computes the same results.
# Subprocesses started by the tests inherit this through os.environ.
# XLA's newer CPU fusion emitters take longer to compile still (a batch-norm ResNet's gradient
# test: 10.9 s -> 6.6 s without them).
for _flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

# One persistent compilation cache per test run, shared by the xdist workers and by the scripts
# the tests start (they inherit the environment): a program compiled by one test is loaded, not
# compiled again, by the next that builds it. A fresh folder per run, so no result of an earlier
# run is reused; fa_jax.training.compiles.count_compiles counts a load from it as a compilation.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="fa_jax-tests-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

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


# Every program XLA's CPU backend compiles keeps a few memory mappings of JIT code (about 3) for as
# long as jax caches it; a test process that compiles tens of thousands of them (eager float64
# tests compile one per op and shape) runs out of the kernel's vm.max_map_count (65530) and the
# compiler segfaults. Past a third of that, the caches are dropped after a test module.
MAP_LIMIT = 20_000


def _mappings() -> int:
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return 0


@pytest.fixture(autouse=True, scope="module")
def _bounded_jit_caches():
    yield
    if _mappings() > MAP_LIMIT:
        jax.clear_caches()
