"""Name -> function look-up shared by every registry (rules, inits, losses, ...)."""

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``table[name]``; an unknown name is a one-line error listing the known ones."""
    if isinstance(name, str) and name in table:
        return table[name]
    raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}")
