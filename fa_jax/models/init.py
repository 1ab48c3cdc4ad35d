"""Weight initializers: ``fj.init.<name>(key, shape)`` or ``fj.init.get(name, **hyper)``.

Every initializer takes a ``jax.random`` key and a shape ``(fan_in, fan_out)`` (dense)
or ``(kh, kw, c_in, c_out)`` (conv, fans are ``receptive * c_in`` / ``receptive * c_out``)
and returns an array whose variance is the formula in its docstring. Those with a standard
implementation delegate to ``jax.nn.initializers`` (the normal ones draw from a truncated
normal rescaled to the stated variance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import registry
from fa_jax.errors import InputError
from fa_jax.registry import lookup

Initializer = Callable[..., jax.Array]


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a dense ``(in, out)`` or conv ``(..., in, out)`` kernel shape."""
    if len(shape) < 2:
        raise InputError(f"initializer needs a shape of rank >= 2, got {tuple(shape)}")
    receptive = 1
    for d in shape[:-2]:
        receptive *= d
    return shape[-2] * receptive, shape[-1] * receptive


def _jnn(factory: Callable[..., Callable[..., jax.Array]]) -> Initializer:
    init = factory(in_axis=-2, out_axis=-1)

    def f(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        return init(key, shape, dtype)

    return f


glorot_uniform = _jnn(jax.nn.initializers.glorot_uniform)
glorot_uniform.__doc__ = "U(-a, a), a = sqrt(6 / (fan_in + fan_out)); Var = 2 / (fan_in + fan_out)."
glorot_normal = _jnn(jax.nn.initializers.glorot_normal)
glorot_normal.__doc__ = "Var = 2 / (fan_in + fan_out) (Glorot & Bengio 2010)."
he_uniform = _jnn(jax.nn.initializers.he_uniform)
he_uniform.__doc__ = "U(-a, a), a = sqrt(6 / fan_in); Var = 2 / fan_in (He et al. 2015)."
he_normal = _jnn(jax.nn.initializers.he_normal)
he_normal.__doc__ = "Var = 2 / fan_in (He et al. 2015)."
lecun_uniform = _jnn(jax.nn.initializers.lecun_uniform)
lecun_uniform.__doc__ = "U(-a, a), a = sqrt(3 / fan_in); Var = 1 / fan_in (LeCun et al. 1998)."
lecun_normal = _jnn(jax.nn.initializers.lecun_normal)
lecun_normal.__doc__ = "Var = 1 / fan_in (LeCun et al. 1998)."


def uniform(a: float = 1.0) -> Initializer:
    """U(-a, a); Var = a^2 / 3. ``uniform(10.0)`` is the init that breaks XOR in the seeds."""
    if not a > 0:
        raise InputError(f"uniform init needs a > 0, got {a!r}")

    def f(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, minval=-a, maxval=a)

    return f


def normal(std: float = 1.0) -> Initializer:
    """N(0, std^2); Var = std^2."""
    if not std > 0:
        raise InputError(f"normal init needs std > 0, got {std!r}")

    def f(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        return std * jax.random.normal(key, shape, dtype)

    return f


def zeros(key: jax.Array | None, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
    """All zeros (a symmetric, untrainable-by-BP start; useful in tests)."""
    del key
    return jnp.zeros(shape, dtype)


def torch_default(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
    """PyTorch ``nn.Linear``/``nn.Conv2d`` default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (``kaiming_uniform_(a=sqrt(5))`` reduces to this bound); Var = 1 / (3 fan_in).
    Its bias is drawn from the same interval (see :func:`bias_init`).
    """
    bound = 1.0 / jnp.sqrt(fans(shape)[0])
    return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)


INITS: dict[str, Callable[..., Initializer]] = {
    "glorot_uniform": lambda: glorot_uniform,
    "glorot_normal": lambda: glorot_normal,
    "he_uniform": lambda: he_uniform,
    "he_normal": lambda: he_normal,
    "lecun_uniform": lambda: lecun_uniform,
    "lecun_normal": lambda: lecun_normal,
    "uniform": uniform,
    "normal": normal,
    "zeros": lambda: zeros,
    "torch_default": lambda: torch_default,
}


def register(name: str, initializer: Initializer, *, replace: bool = False) -> Initializer:
    """Add ``initializer(key, shape, dtype) -> array`` to :data:`INITS` as ``name`` (for ``init=name``
    everywhere); a name already registered is refused unless ``replace=True``. Returns it."""
    registry.add(INITS, name, lambda: initializer, what="init", replace=replace)
    return initializer


def parse(spec: str) -> tuple[str, dict]:
    """``"uniform(10)"`` -> ``("uniform", {"a": 10.0})``; ``"he_uniform"`` -> ``("he_uniform", {})``."""
    spec = spec.strip()
    if spec.endswith(")") and "(" in spec:
        name, arg = spec[:-1].split("(", 1)
        lookup(INITS, name, "init")
        key = {"uniform": "a", "normal": "std"}.get(name)
        if key is None:
            raise InputError(f"init {name!r} takes no argument; only uniform(a) and normal(std) do")
        try:
            return name, {key: float(arg)}
        except ValueError:
            raise InputError(f"init {spec!r}: {arg!r} is not a number") from None
    lookup(INITS, spec, "init")
    return spec, {}


def get(name: str, **hyper) -> Initializer:
    """Initializer by name (``"he_uniform"``, ``"uniform(10)"``, or ``"uniform", a=10``)."""
    base, parsed = parse(name)
    return lookup(INITS, base, "init")(**{**parsed, **hyper})


def bias_init(name: str) -> Initializer:
    """Bias initializer that goes with weight init ``name``: zeros, except PyTorch's default."""
    base, _ = parse(name)
    if base == "torch_default":

        def f(key: jax.Array, fan_in: int, fan_out: int, dtype: DTypeLike = jnp.float32) -> jax.Array:
            bound = 1.0 / jnp.sqrt(fan_in)
            return jax.random.uniform(key, (fan_out,), dtype, minval=-bound, maxval=bound)

        return f
    return lambda key, fan_in, fan_out, dtype=jnp.float32: jnp.zeros((fan_out,), dtype)
