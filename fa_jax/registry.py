"""Name -> value registries (rules, inits, activations, losses, ...): one look-up, one way to add.

A registry is a plain dict from the name a user types to what it names. :func:`lookup`
reads it (an unknown name lists the known ones); :func:`add` extends it and refuses a name
that is already there unless ``replace=True``, so a typo or a second import never silently
swaps a built-in. Each user-extensible registry has a ``register`` function built on it:
``fj.register`` (rules), ``fj.init.register``, ``fj.activations.register``,
``fj.losses.register``, ``fj.schedules.register``, ``fj.optim.register``,
``fj.cnn.register_layer``, ``fj.cnn.register_model``, ``fj.rules.feedback_schemes.register``.
"""

from collections.abc import Mapping, MutableMapping
from typing import TypeVar

from fa_jax import checks
from fa_jax.errors import InputError

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``table[name]``; an unknown name is a one-line error listing the known ones."""
    if isinstance(name, str) and name in table:
        return table[name]
    raise InputError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}")


def add(table: MutableMapping[str, T], name: str, value: T, *, what: str, replace: bool = False) -> T:
    """``table[name] = value`` and return ``value``.

    A one-line ValueError for a name that is not a non-empty str, or one already in ``table``
    (unless ``replace=True``).

    Args:
        table: the registry, a dict from name to value.
        name: the name a user will type, a non-empty str.
        value: what it names (a rule, an init, a loss, ...).
        what: names the kind in messages (``"rule"``).
        replace: allow replacing a name already in ``table`` (default False).
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"a {what} name must be a non-empty str, got {name!r}")
    checks.boolean("replace", replace)
    if name in table and not replace:
        raise InputError(f"{what} {name!r} is already registered; pass replace=True to replace it")
    table[name] = value
    return value
