"""The multilayer perceptron: ``fj.mlp([n_in, h1, ..., n_out], activation=, init=)``.

params: a list with one dict per layer, ``{"w": (fan_in, fan_out), "b": (fan_out,)}``
(plus ``"alpha"``, a scalar, for ``prelu`` hidden layers). Hidden layers compute
``h_l = f(h_{l-1} @ W_l + b_l)``; the last layer returns logits ``y = h_L @ W + b``
(no output nonlinearity: the loss applies sigmoid / softmax).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import checks, pytree
from fa_jax.errors import InputError
from fa_jax.models import activations
from fa_jax.models import init as inits
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback import check_feedback

if TYPE_CHECKING:
    from fa_jax.rules.rule import Layer, Rule


def _layer(act, p, h, linear):
    return act(linear(h, p["w"], p["b"]), p)


@pytree.dataclass
class MLP:
    """A pair of pure functions ``init(key)`` / ``apply(params, x, rule=, feedback=)``."""

    sizes: tuple[int, ...] = pytree.field(pytree_node=False)
    activation: str = pytree.field(pytree_node=False, default="relu")
    init_name: str = pytree.field(pytree_node=False, default="he_uniform")

    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    @property
    def weight_shapes(self) -> list[tuple[int, int]]:
        return [(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:])]

    @property
    def hidden_shapes(self) -> list[tuple[int]]:
        """Feature shape of each hidden activation h_1..h_L (without the batch axis)."""
        return [(h,) for h in self.sizes[1:-1]]

    @property
    def layers(self) -> list[Layer]:
        """``layer(p, h, linear) -> h'`` for each layer; the last one is linear (logits)."""
        act = activations.get(self.activation)
        ident = activations.get("identity")
        n = len(self.sizes) - 1
        return [functools.partial(_layer, act if i < n - 1 else ident) for i in range(n)]

    def init(self, key: jax.Array, dtype: DTypeLike = jnp.float32) -> list[dict[str, jax.Array]]:
        """Draw params. key: a ``jax.random`` key, split once per layer (weights, bias)."""
        w_init = inits.get(self.init_name)
        b_init = inits.bias_init(self.init_name)
        act = activations.get(self.activation)
        params = []
        keys = jax.random.split(key, len(self.weight_shapes))
        for i, (k, (fi, fo)) in enumerate(zip(keys, self.weight_shapes)):
            kw, kb = jax.random.split(k)
            p = {"w": w_init(kw, (fi, fo), dtype), "b": b_init(kb, fi, fo, dtype)}
            if i < len(self.weight_shapes) - 1:
                p.update(act.init_params(dtype))
            params.append(p)
        return params

    def apply(self, params: Sequence[dict[str, jax.Array]], x: jax.Array, *, rule: str | Rule = "bp",
              feedback: Any = None, train: bool = False, key: jax.Array | None = None,
              targets: jax.Array | None = None) -> jax.Array:
        """Logits (..., n_out) for inputs x (..., n_in); ``jax.grad`` through it is ``rule``.

        Args:
            params: one dict per layer, ``{"w": (fan_in, fan_out), "b": (fan_out,)}`` (module doc).
            x: (..., n_in) inputs.
            rule: a name from ``fj.RULES`` (default ``"bp"``).
            feedback: the rule's fixed feedback (:func:`fa_jax.init_feedback`); None for BP.
            train, key: accepted for interface parity with stochastic models (dropout); a plain
                MLP ignores them.
            targets: the batch's labels, for rules that read them (``Rule.needs_targets``: drtp);
                other rules ignore them.
        """
        del train, key
        r = rules_lib.get(rule)
        if x.shape[-1] != self.n_in:
            raise InputError(f"input has {x.shape[-1]} features (shape {tuple(x.shape)}), model expects {self.n_in}")
        if len(params) != len(self.weight_shapes):
            raise InputError(f"params has {len(params)} layers, model has {len(self.weight_shapes)}")
        check_feedback(self, r, feedback)
        return r.apply_layers(self.layers, params, x, feedback, targets)


def mlp(sizes: Sequence[int], activation: str = "relu", init: str = "he_uniform") -> MLP:
    """Build an MLP. sizes: [n_in, h_1, ..., h_L, n_out], all positive ints."""
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise InputError(f"mlp needs at least [n_in, n_out], got sizes={list(sizes)}")
    for s in sizes:
        if not checks.is_positive_int(s):
            raise InputError(f"mlp sizes must be positive ints, got {s!r} in {list(sizes)}")
    activations.get(activation)
    inits.get(init)  # checks the name and its argument (uniform(a) needs a > 0) before any run
    return MLP(sizes=sizes, activation=activation, init_name=init)
