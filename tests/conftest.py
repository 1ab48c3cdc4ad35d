import zlib

import jax
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
