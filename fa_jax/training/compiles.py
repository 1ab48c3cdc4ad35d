"""Count XLA compilations: ``with count_compiles() as c: ...; c.count``.

Listens to JAX's own ``/jax/core/compile/backend_compile_duration`` monitoring event, so
it counts every backend compilation in the block (used to prove that sweeps with other
seeds or learning rates reuse the compiled program).
"""

import contextlib
import dataclasses

from jax import monitoring

_EVENT = "/jax/core/compile/backend_compile_duration"
_ACTIVE: list["CompileCount"] = []
_REGISTERED = False


@dataclasses.dataclass
class CompileCount:
    count: int = 0
    seconds: float = 0.0


def _listener(name, duration, **kwargs):
    if name == _EVENT:
        for c in _ACTIVE:
            c.count += 1
            c.seconds += duration


@contextlib.contextmanager
def count_compiles():
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
