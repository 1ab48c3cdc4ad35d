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
    base = jax.random.key(abs(hash(request.node.name)) % (2**31))
    return lambda n: list(jax.random.split(base, n))
