"""What :func:`fa_jax.from_flax` learns by tracing a model once on shapes: the pass's layers and points,
the modules that hold params, and the kernels a lifted transform stacks; its refusals, one line each."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jax

from fa_jax.errors import InputError
from fa_jax.wrap.wiring import Wiring, path_name

if TYPE_CHECKING:
    from fa_jax.wrap.linen import LinenAdapter
    from fa_jax.wrap.nnx import NNXAdapter


def at(tree: Any, path: tuple) -> Any:
    """``tree[path[0]][path[1]]...``."""
    for k in path:
        tree = tree[k]
    return tree


@contextlib.contextmanager
def runs_on(shape: tuple, dtype: str) -> Iterator[None]:
    """Turns the module's own TypeError / ValueError on an input of ``shape`` into a one-line InputError."""
    try:
        yield
    except InputError:
        raise
    except (TypeError, ValueError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise InputError(f"the module does not run on inputs (batch, {', '.join(map(str, shape))}) of {dtype}: "
                         f"{first}") from e


def discover(adapter: LinenAdapter | NNXAdapter, params: Any, state: Any, x: jax.ShapeDtypeStruct, *,
             markers: bool) -> Wiring:
    """The recording :class:`Wiring` of one pass on shapes (``x`` a ShapeDtypeStruct), with ``out_shape``;
    ``markers``: the points are the DFAPoint markers."""
    wiring = Wiring(None, markers=markers)

    def run(p, s, x_):
        wiring.x = x_
        return adapter.run(p, s, x_, train=False, key=None, wiring=wiring)[0]

    out = jax.eval_shape(run, params, state, x)
    if not hasattr(out, "shape"):
        raise InputError(f"the module returns {type(out).__name__}; fa_jax trains models that return one array "
                         f"of logits (batch, ..., n_out)")
    wiring.out_shape = tuple(out.shape)
    wiring.points = [(n, jax.ShapeDtypeStruct(h.shape, h.dtype)) for n, h in wiring.points]
    return wiring


def check_owners(adapter: LinenAdapter | NNXAdapter, params: Any, wiring: Wiring) -> None:
    """One-line InputError for a module holding params that is neither a weighted layer the pass met nor a
    layer trained by its true gradient."""
    called = {c[0] for c in wiring.calls}
    for path, names in _owners(params).items():
        kind = wiring.modules.get(path)
        if path in called or kind in adapter.true_gradient_names:
            continue
        what = f"({kind})" if kind else "(a module that is never called)"
        raise InputError(f"layer {path_name(path)} {what} holds params {names} that fa_jax cannot wire: weighted "
                         f"layers it knows are {', '.join(adapter.weighted_names)}; layers trained by their true "
                         f"gradient are {', '.join(adapter.true_gradient_names)}")


def _owners(params, prefix=()):
    """``{path: [param names]}`` of every module that holds params directly."""
    out = {}
    own = [k for k, v in params.items() if not hasattr(v, "keys")]
    if own:
        out[prefix] = sorted(own)
    for k, v in params.items():
        if hasattr(v, "keys"):
            out.update(_owners(v, prefix + (k,)))
    return out


def stacked_kernels(params: Any, wiring: Wiring) -> tuple:
    """``(path, kernel shape, one call's kernel shape)`` of every layer called inside a lifted transform whose
    kernel in ``params`` has another shape than its calls use (``nn.scan`` / ``nn.vmap`` over params)."""
    one = {c[0]: c[2] for c in wiring.calls}
    full = {p: tuple(at(params, p + ("kernel",)).shape) for p in wiring.lifted}
    return tuple((p, full[p], one[p]) for p in wiring.lifted if full[p] != one[p])
