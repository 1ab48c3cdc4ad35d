"""An MLP with normalization and dropout in its hidden layers: ``fj.norm_mlp(sizes, norm=, dropout=)``.

Hidden layer l computes ``h_l = drop(f(norm(h_{l-1} W_l + b_l)))`` (DropConnect:
``h_l = f(norm(h_{l-1} (W_l * M_l / (1 - p)) + b_l))``); the output layer is
linear (logits). ``norm``: ``"none"``, ``"layer"`` (:func:`fa_jax.models.norm.layer_norm`), ``"group"``
(:func:`fa_jax.models.norm.group_norm` over the features, ``groups`` runs of n/groups
consecutive features; Wu & He 2018) or ``"batch"`` (:func:`fa_jax.models.norm.batch_norm`).
There is no instance norm here: with one feature per group it would normalize every feature
to 0 (:mod:`fa_jax.models.cnn` has it for images). params per hidden layer add ``"scale"`` and
``"shift"`` (n,) when normalized. It is wired by every rule exactly like :class:`fa_jax.MLP`
(see :mod:`fa_jax.models.norm` and :mod:`fa_jax.models.dropout` for what FA/DFA send through them).

Batch norm's running statistics are explicit state: ``init_stats()`` makes them and
``apply(..., stats=)`` returns ``(logits, new_stats)``; without batch norm ``apply``
returns logits only. ``fj.sweep`` trains all of them: it passes ``train=True`` and a fresh
key per step to models whose ``stochastic`` is True, and keeps a ``stateful`` (batch-norm)
model's running statistics in ``TrainState.model_state`` (train mode in the step, eval mode
with the running statistics at every evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from fa_jax import checks, pytree
from fa_jax.errors import InputError
from fa_jax.models import activations
from fa_jax.models import dropout as dropout_lib
from fa_jax.models import norm as norm_lib
from fa_jax.models.mlp import MLP, mlp
from fa_jax.rules import core as rules_lib
from fa_jax.rules.feedback import check_feedback

if TYPE_CHECKING:
    from fa_jax.rules.rule import Rule

NORMS = ("none", "layer", "group", "batch")


@pytree.dataclass
class NormMLP(MLP):
    """``MLP`` plus static ``norm`` (one of :data:`NORMS`), the ``dropout`` rate p, its
    ``dropout_kind`` (:data:`fa_jax.models.dropout.KINDS`), standout's ``standout_alpha``,
    batch-norm ``momentum`` and group norm's ``groups``."""

    norm: str = pytree.field(pytree_node=False, default="none")
    dropout: float = pytree.field(pytree_node=False, default=0.0)
    momentum: float = pytree.field(pytree_node=False, default=0.9)
    dropout_kind: str = pytree.field(pytree_node=False, default="bernoulli")
    standout_alpha: float = pytree.field(pytree_node=False, default=1.0)
    groups: int = pytree.field(pytree_node=False, default=8)

    @property
    def stochastic(self) -> bool:
        return self.dropout > 0

    @property
    def stateful(self) -> bool:
        """True with batch norm: ``fj.sweep`` keeps ``init_stats()`` in ``TrainState.model_state``."""
        return self.norm == "batch"

    def init(self, key: jax.Array, dtype: DTypeLike = jnp.float32) -> list[dict[str, jax.Array]]:
        params = super().init(key, dtype)
        if self.norm != "none":
            for p, n in zip(params[:-1], self.sizes[1:-1]):
                p.update(norm_lib.init_norm(n, dtype))
        return params

    def init_stats(self, dtype: DTypeLike = jnp.float32) -> list[dict[str, jax.Array]]:
        """Batch-norm running statistics, one ``{"mean", "var"}`` per hidden layer."""
        return [norm_lib.init_batch_stats(n, dtype) for n in self.sizes[1:-1]]

    def _layers(self, train, key, stats, new_stats):
        act = activations.get(self.activation)
        n = len(self.sizes) - 1

        connect = self.dropout_kind == "dropconnect" and train and self.dropout > 0

        def hidden(i, p, h, linear):
            k = None if key is None else jax.random.fold_in(key, i)
            if connect:
                linear = dropout_lib.DropConnectOp(linear, k, self.dropout)
            a = linear(h, p["w"], p["b"])
            if self.norm == "layer":
                a = norm_lib.layer_norm(a, p)
            elif self.norm == "group":
                a = norm_lib.group_norm(a, p, self.groups)
            elif self.norm == "batch":
                a, s = norm_lib.batch_norm(a, p, stats[i], train=train, momentum=self.momentum)
                new_stats.append(s)
            h = act(a, p)
            if self.dropout_kind == "dropconnect":
                return h
            return dropout_lib.dropout(k, h, self.dropout, train, kind=self.dropout_kind, pre=a,
                                       alpha=self.standout_alpha)

        def out(p, h, linear):
            return linear(h, p["w"], p["b"])

        return [(lambda p, h, linear, i=i: hidden(i, p, h, linear)) for i in range(n - 1)] + [out]

    def apply(self, params: Sequence[dict[str, jax.Array]], x: jax.Array, *, rule: str | Rule = "bp",
              feedback: Any = None, train: bool = False, key: jax.Array | None = None,
              stats: Sequence[dict[str, jax.Array]] | None = None,
              targets: jax.Array | None = None) -> jax.Array | tuple[jax.Array, list[dict[str, jax.Array]]]:
        """Logits (batch, n_out) (and new batch-norm stats when ``norm="batch"``).

        Args:
            params: one dict per layer as :class:`fa_jax.MLP`'s, + ``"scale"``, ``"shift"`` (n,)
                per normalized hidden layer.
            x: (batch, n_in) inputs.
            rule: a name from ``fj.RULES`` (default ``"bp"``).
            feedback: the rule's fixed feedback (:func:`fa_jax.init_feedback`); None for BP.
            train: use batch statistics and dropout (default False: running batch-norm statistics, no dropout).
            key: a ``jax.random`` key for dropout, required when ``train`` and ``dropout > 0``; hidden
                layer i draws its mask from ``fold_in(key, i)``.
            stats: batch-norm running statistics from :meth:`init_stats`; required with ``norm="batch"``.
            targets: the batch's labels, for rules that read them (drtp; as :meth:`fa_jax.MLP.apply`).

        Returns:
            The logits; with ``norm="batch"`` ``(logits, new_stats)``.
        """
        r = rules_lib.get(rule)
        if x.shape[-1] != self.n_in:
            raise InputError(f"input has {x.shape[-1]} features (shape {tuple(x.shape)}), model expects {self.n_in}")
        if self.norm == "batch" and stats is None:
            raise InputError("a batch-norm model needs stats= (make them with model.init_stats())")
        if train and self.dropout > 0 and key is None:
            raise InputError("dropout needs key= when train=True")
        check_feedback(self, r, feedback)
        new_stats = []
        y = r.apply_layers(self._layers(train, key, stats, new_stats), params, x, feedback, targets)
        return (y, new_stats) if self.norm == "batch" else y


def norm_mlp(sizes: Sequence[int], activation: str = "relu", init: str = "he_uniform", *, norm: str = "none",
             dropout: str | float = "none", p: float | None = None, momentum: float = 0.9,
             standout_alpha: float = 1.0, groups: int = 8) -> NormMLP:
    """Build a :class:`NormMLP`; a bad ``norm``, dropout kind, rate outside [0, 1), momentum or groups
    is a one-line error.

    Args:
        sizes: [n_in, h_1, ..., h_L, n_out], all positive ints (as :func:`fa_jax.mlp`).
        activation: the hidden layers' activation name (default ``"relu"``).
        init: the weights' init name (default ``"he_uniform"``).
        norm: ``"none"`` (default), ``"layer"``, ``"group"`` or ``"batch"`` (:data:`NORMS`), in every
            hidden layer (``"instance"`` is refused: one feature per group).
        dropout: in every hidden layer, ``"none"`` (default), ``"bernoulli"`` and ``"gaussian"``
            (after the activation), ``"standout"`` (after the activation, keep probability from the
            pre-activation) or ``"dropconnect"`` (on the layer's weights), see
            :mod:`fa_jax.models.dropout`; a number is Bernoulli dropout at that rate.
        p: the rate in [0, 1) of a named kind (default 0.5).
        momentum: batch norm's running-statistics momentum in [0, 1) (default 0.9).
        standout_alpha: standout's slope alpha (default 1).
        groups: with ``norm="group"``, the groups of every hidden layer (default 8); must divide
            every hidden width.
    """
    base = mlp(sizes, activation, init)
    if norm == "instance":
        raise InputError("norm='instance' has no meaning in an MLP: each group would be one feature, normalized "
                         "to 0; use 'layer' or 'group' (instance norm is for images: fj.cnn's instancenorm)")
    checks.choice("norm", norm, NORMS)
    checks.positive_int("groups", groups)
    if norm == "group":
        for i, n in enumerate(base.sizes[1:-1], 1):
            norm_lib.check_groups(groups, n, what=f"features (hidden layer {i})")
    kind, rate = dropout_lib.resolve(dropout, p)
    checks.number_in("batch-norm momentum", momentum, 0, 1)
    return NormMLP(sizes=base.sizes, activation=activation, init_name=init, norm=norm, dropout=rate,
                   momentum=float(momentum), dropout_kind="bernoulli" if kind == "none" else kind,
                   standout_alpha=dropout_lib.check_alpha(standout_alpha), groups=groups)
