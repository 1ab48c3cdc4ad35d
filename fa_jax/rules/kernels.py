"""The kernels a feedback pytree stands for, in the feedback's own structure.

FA-family feedback holds one ``B`` per weighted layer. For fa_jax's own models it is a list
aligned with the params list (``B_l`` stands for ``params[l]["w"]``); for a wrapped Flax model
(:func:`fa_jax.from_flax`) it mirrors the params dict (``feedback[...]["kernel"]`` stands for
``params[...]["kernel"]``). The evolving-feedback hooks (kp, wm, brsf) and the diagnostics read
and write kernels through these two functions, so they work on both.
"""

from __future__ import annotations

from typing import Any

from fa_jax.errors import InputError


def kernels_like(tree: Any, feedback: Any) -> Any:
    """The leaves of ``tree`` (params, updates or gradients) that ``feedback``'s leaves stand for,
    in ``feedback``'s structure: ``[t["w"] for t in tree]`` for a list, the same paths for a dict."""
    if isinstance(feedback, (list, tuple)):
        return [t["w"] for t in tree]
    if isinstance(feedback, dict):
        missing = [k for k in feedback if k not in tree]
        if missing:
            raise InputError(f"feedback has an entry {missing[0]!r} that the params do not have "
                             f"(FA feedback mirrors the params: make it with fj.init_feedback)")
        return {k: kernels_like(tree[k], v) for k, v in feedback.items()}
    return tree


def with_kernels(tree: Any, feedback: Any, kernels: Any) -> Any:
    """``tree`` with the leaves :func:`kernels_like` selects replaced by ``kernels`` (same structure)."""
    if isinstance(feedback, (list, tuple)):
        return [{**t, "w": k} for t, k in zip(tree, kernels)]
    if isinstance(feedback, dict):
        return {**tree, **{k: with_kernels(tree[k], v, kernels[k]) for k, v in feedback.items()}}
    return kernels


