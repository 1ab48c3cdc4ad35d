"""Named feedback presets: how other codebases draw ``B``, for ``init_feedback(..., scheme=)``.

Each scheme is ``scheme(key, model, rule, shapes, dtype) -> [B, ...]`` for the feedback
shapes of ``rule`` (FA: (fan_in, fan_out) like ``W_l``; DFA: (n_out, h_l)). "Width" is the
size of the activation the matrix sends its signal to: ``h_l`` for DFA (columns), the
layer input ``fan_in`` for FA (rows).

- ``"nokland_dfa"``: U(-1/sqrt(width), 1/sqrt(width)) per matrix (Nøkland's DFA code,
  github.com/anokland/dfa-torch).
- ``"nokland_fa"``: an independent draw of the model's forward initializer (Nøkland's FA
  code: the feedback layer is initialised like the forward layer). DFA matrices are drawn as
  a forward layer (h_l -> n_out) and transposed.
- ``"xavier"``: U(-a, a), a = sqrt(6 / (rows + cols)) per matrix (biotorch's default).
- ``"akrout"``: N(0, 1 / (rows + cols)) per matrix (Akrout et al. 2019).
- ``"tinydfa"``: one shared matrix M ~ U[-1, 1) of shape (max rows, max cols); each B is the
  slice ``M[:rows, :cols] / sqrt(max width)`` (lightonai's TinyDFA; its FA analogue here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import jax
from jax.typing import DTypeLike

from fa_jax import registry
from fa_jax.models import contract
from fa_jax.models import init as inits

if TYPE_CHECKING:
    from fa_jax.models.contract import Model

Shape = tuple[int, ...]
# scheme(key, model, rule name, feedback shapes, dtype) -> one B per shape
Scheme = Callable[[jax.Array, "Model", str, Sequence[Shape], DTypeLike], list[jax.Array]]


def _width(rule, shape):
    return shape[1] if rule == "dfa" else shape[0]


def nokland_dfa(key: jax.Array, model: Model, rule: str, shapes: Sequence[Shape], dtype: DTypeLike) -> list[jax.Array]:
    """U(-1/sqrt(width), 1/sqrt(width)) per matrix (Nøkland's DFA code, github.com/anokland/dfa-torch).

    Args:
        key: a ``jax.random`` key, split per matrix.
        model: the model the feedback is for (unused here).
        rule: the rule's name; ``"dfa"`` takes the width from a shape's columns (h_l), any other
            rule from its rows (fan_in).
        shapes: the rule's feedback shapes (FA: (fan_in, fan_out); DFA: (n_out, h_l)), all 2-D.
        dtype: of the arrays.

    Returns:
        One B per shape.
    """
    keys = jax.random.split(key, len(shapes))
    out = []
    for k, s in zip(keys, shapes):
        a = 1.0 / math.sqrt(_width(rule, s))
        out.append(jax.random.uniform(k, s, dtype, -a, a))
    return out


def nokland_fa(key: jax.Array, model: Model, rule: str, shapes: Sequence[Shape], dtype: DTypeLike) -> list[jax.Array]:
    """An independent draw of the model's forward initializer (Nøkland's FA code).

    DFA matrices are drawn as a forward layer (h_l -> n_out) and transposed.

    Args:
        key, rule, shapes, dtype: as for :func:`nokland_dfa`.
        model: the model whose ``init_name`` initializer draws the matrices.
    """
    w_init = inits.get(contract.init_name(model, "feedback scheme 'nokland_fa'"))
    keys = jax.random.split(key, len(shapes))
    if rule == "dfa":
        return [w_init(k, (s[1], s[0]), dtype).T for k, s in zip(keys, shapes)]
    return [w_init(k, s, dtype) for k, s in zip(keys, shapes)]


def xavier(key: jax.Array, model: Model, rule: str, shapes: Sequence[Shape], dtype: DTypeLike) -> list[jax.Array]:
    """U(-a, a), a = sqrt(6 / (rows + cols)) per matrix (biotorch's default).

    Args:
        key, model, rule, shapes, dtype: as for :func:`nokland_dfa` (model and rule unused).
    """
    keys = jax.random.split(key, len(shapes))
    out = []
    for k, s in zip(keys, shapes):
        a = math.sqrt(6.0 / (s[0] + s[1]))
        out.append(jax.random.uniform(k, s, dtype, -a, a))
    return out


def akrout(key: jax.Array, model: Model, rule: str, shapes: Sequence[Shape], dtype: DTypeLike) -> list[jax.Array]:
    """N(0, 1 / (rows + cols)) per matrix (Akrout et al. 2019).

    Args:
        key, model, rule, shapes, dtype: as for :func:`nokland_dfa` (model and rule unused).
    """
    keys = jax.random.split(key, len(shapes))
    return [jax.random.normal(k, s, dtype) * math.sqrt(1.0 / (s[0] + s[1])) for k, s in zip(keys, shapes)]


def tinydfa(key: jax.Array, model: Model, rule: str, shapes: Sequence[Shape], dtype: DTypeLike) -> list[jax.Array]:
    """Slices ``M[:rows, :cols] / sqrt(max width)`` of one shared M ~ U[-1, 1) (lightonai's TinyDFA).

    M has shape (max rows, max cols) over ``shapes``; for FA (this library's analogue) the width is a shape's rows.

    Args:
        key: one ``jax.random`` key, for M.
        model, rule, shapes, dtype: as for :func:`nokland_dfa` (model unused).
    """
    rows, cols = max(s[0] for s in shapes), max(s[1] for s in shapes)
    m = jax.random.uniform(key, (rows, cols), dtype, -1.0, 1.0)
    div = math.sqrt(max(_width(rule, s) for s in shapes))
    return [m[: s[0], : s[1]] / div for s in shapes]


SCHEMES: dict[str, Scheme] = {"nokland_dfa": nokland_dfa, "nokland_fa": nokland_fa, "xavier": xavier,
                              "akrout": akrout, "tinydfa": tinydfa}


def register(name: str, scheme: Scheme, *, replace: bool = False) -> Scheme:
    """Add ``scheme(key, model, rule, shapes, dtype) -> [B, ...]`` to :data:`SCHEMES` as ``name``
    (for ``init_feedback(..., scheme=name)``); a name already registered is refused unless
    ``replace=True``. Returns ``scheme``."""
    return registry.add(SCHEMES, name, scheme, what="feedback scheme", replace=replace)
