"""Frozen dataclasses that are JAX pytrees: the models, tasks, scalers and train states.

``@pytree.dataclass`` makes a frozen :func:`dataclasses.dataclass`, registers it with
:func:`jax.tree_util.register_dataclass` (fields are leaves, except those declared with
``pytree.field(pytree_node=False)``, which are static metadata: part of the tree structure,
hashed into ``jit`` caches) and gives it ``replace(**changes)``. These are the semantics of
``flax.struct.dataclass``, built on jax alone so that ``import fa_jax`` does not load flax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

import jax

_C = TypeVar("_C", bound=type)


def field(*, pytree_node: bool = True, **kwargs: Any) -> Any:
    """A dataclass field; ``pytree_node=False`` makes it static metadata instead of a leaf."""
    return dataclasses.field(metadata={"pytree_node": pytree_node}, **kwargs)


@overload
def dataclass(cls: _C, **kwargs: Any) -> _C: ...
@overload
def dataclass(cls: None = None, **kwargs: Any) -> Callable[[_C], _C]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def dataclass(cls: _C | None = None, **kwargs: Any) -> _C | Callable[[_C], _C]:
    """``@dataclass`` / ``@dataclass(kw_only=True)``: a frozen dataclass registered as a pytree."""
    if cls is None:
        return lambda c: dataclass(c, **kwargs)
    kwargs.setdefault("frozen", True)
    cls = dataclasses.dataclass(**kwargs)(cls)
    fields = dataclasses.fields(cls)
    data = [f.name for f in fields if f.metadata.get("pytree_node", True)]
    meta = [f.name for f in fields if not f.metadata.get("pytree_node", True)]
    cls.replace = lambda self, **changes: dataclasses.replace(self, **changes)
    jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)
    return cls
