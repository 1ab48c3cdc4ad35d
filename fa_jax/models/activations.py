"""Activation functions by name. ``get(name)`` returns an :class:`Activation`.

All act elementwise on pre-activations ``a`` of any shape. ``prelu`` owns a learnable
slope stored in its layer's params as ``"alpha"`` (a scalar, 0.25 at init, as PyTorch's
``nn.PReLU()``); every other activation has no parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import registry
from fa_jax.errors import InputError
from fa_jax.registry import lookup


@dataclasses.dataclass(frozen=True)
class Activation:
    """``fn(a, params) -> h``; ``params`` are the extra layer params it owns (name -> init value)."""

    name: str
    fn: Callable
    params: tuple[tuple[str, float], ...] = ()

    def __call__(self, a: jax.Array, layer_params: dict | None = None) -> jax.Array:
        return self.fn(a, layer_params)

    def init_params(self, dtype: DTypeLike = jnp.float32) -> dict:
        return {k: jnp.asarray(v, dtype) for k, v in self.params}


def lecun_tanh(a: jax.Array) -> jax.Array:
    """LeCun's scaled tanh, 1.7159 tanh(2a/3) (LeCun et al., Efficient BackProp, 1998)."""
    return 1.7159 * jnp.tanh(2.0 * a / 3.0)


def _plain(f):
    return lambda a, p: f(a)


ACTIVATIONS = {
    a.name: a
    for a in [
        Activation("relu", _plain(jax.nn.relu)),
        Activation("leaky_relu", _plain(lambda a: jax.nn.leaky_relu(a, 0.01))),
        Activation("prelu", lambda a, p: jnp.where(a >= 0, a, p["alpha"] * a), (("alpha", 0.25),)),
        Activation("elu", _plain(jax.nn.elu)),
        Activation("gelu", _plain(lambda a: jax.nn.gelu(a, approximate=False))),
        Activation("selu", _plain(jax.nn.selu)),
        Activation("sigmoid", _plain(jax.nn.sigmoid)),
        Activation("tanh", _plain(jnp.tanh)),
        Activation("lecun_tanh", _plain(lecun_tanh)),
        Activation("identity", _plain(lambda a: a)),
    ]
}


def register(activation: Activation, *, replace: bool = False) -> Activation:
    """Add ``activation`` to :data:`ACTIVATIONS` under its name (for ``activation=`` and the cnn
    layer specs); a name already registered is refused unless ``replace=True``. Returns it."""
    if not isinstance(activation, Activation):
        raise InputError(f"register takes a fa_jax.activations.Activation(name, fn, params), got {activation!r}")
    return registry.add(ACTIVATIONS, activation.name, activation, what="activation", replace=replace)


def get(name: str) -> Activation:
    """Activation by name; unknown names list the known ones."""
    return lookup(ACTIVATIONS, name, "activation")
