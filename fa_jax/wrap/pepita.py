"""PEPITA (:mod:`fa_jax.rules.pepita`) on a wrapped Flax model whose weighted layers form a chain.

The standard pass runs the module with its params and ``x`` behind ``stop_gradient``; its
:class:`fa_jax.wrap.wiring.Wiring` records the default points ``h_l`` (the inputs of weighted
calls 2..L, each passed on behind ``stop_gradient``). One ``custom_vjp`` node, :func:`_output`,
ties the logits to the points, the params, ``x`` and ``F``. Its backward takes ``e = N g`` and
``x_mod = x + e @ F`` (reshaped to the input shape; :func:`fa_jax.rules.pepita.modulate`), runs the
modulated pass through ``model.adapter.run`` on ``x_mod`` (the same dropout key: the same mask),
recording each weighted call's input ``h_in^mod`` and functional forward ``fn``, and returns

- for weighted layer l: ``vjp_p fn_l(h_in_l^mod, p_l)(delta_l)``, with ``delta_l`` the built-in's
  (:func:`fa_jax.rules.pepita.deltas`: ``(h_l - h_l^mod) / N``, the last ``e_mod / N``) reshaped
  to the layer's output; for a dense layer ``(h_in^mod)^T delta`` and ``sum delta``, the built-in's;
- zeros for every other param (norm scales, ...), for ``x`` and for ``F``;
- ``(h_l - h_l^mod) / N`` for the points (what the diagnostics read).

Chain: each weighted layer is called once, the input of call l+1 is a point whose size per
example is that of call l's output (an activation, a flatten between is fine; pooling is not), and
the last call returns the logits (batch, n_out). Batch norm (state) and DFAPoint markers are refused.
"""

import functools
import math

import jax
import jax.numpy as jnp

from fa_jax.rules import pepita as pp
from fa_jax.wrap.wiring import Wiring, path_name
from fa_jax.errors import InputError


def check(model, name: str) -> None:
    """One-line InputError unless the rule ``name`` (pepita) runs on the wrapped ``model`` (module doc)."""
    head = f"rule {name!r} on a wrapped Flax model"
    if model.stateful:
        raise InputError(f"{head}: the model has state collections (batch norm), which PEPITA's two passes "
                         f"would both update; use a model without batch norm")
    if model.markers:
        raise InputError(f"{head}: the model has DFAPoint markers; PEPITA's points are the inputs of the weighted "
                         f"layers (remove the markers)")
    if not jnp.issubdtype(jnp.dtype(model.input_dtype), jnp.floating):
        raise InputError(f"{head}: the input dtype is {model.input_dtype}; PEPITA adds e @ F to the input, "
                         f"which must be floating")
    calls, points = model.calls, model.points
    paths = [c[0] for c in calls]
    for i, (path, _, _, _, out) in enumerate(calls):
        name = path_name(path)
        if paths.count(path) > 1:
            raise InputError(f"{head}: layer {name} is called more than once; PEPITA needs a chain of "
                             f"weighted layers, each called once")
        if i == len(calls) - 1:
            if tuple(out[1:]) != (model.n_out,):
                raise InputError(f"{head}: the last weighted layer {name} returns {tuple(out[1:])} per example, "
                                 f"not the logits ({model.n_out},); PEPITA needs it to be the output layer")
            break
        nxt = path_name(paths[i + 1])
        point = points[i] if i < len(points) else None
        if point is None or point[0] != nxt:
            raise InputError(f"{head}: the input of layer {nxt} is not the output of layer {name} (the weighted "
                             f"layers do not form a chain)")
        if math.prod(out[1:]) != math.prod(point[1]):
            raise InputError(f"{head}: layer {name} outputs {tuple(out[1:])} per example but the next layer {nxt} "
                             f"reads {point[1]} (pooling or reshaping between them); PEPITA needs each weighted "
                             f"layer's output to be the next one's input, up to an activation or a flatten")
    if len(points) != len(calls) - 1:
        raise InputError(f"{head}: the weighted layers do not form a chain ({len(points)} points for "
                         f"{len(calls)} layers)")


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _output(modulated, y, hs, params, x, F, consts):
    """Identity on ``y`` whose backward returns PEPITA's updates (module doc); ``modulated``:
    ``(params, x_mod, hs, y, e, *consts) -> (param updates, point cotangents)``, closure-converted."""
    return y


def _fwd(modulated, y, hs, params, x, F, consts):
    return y, (y, hs, params, x, F, consts)


def _bwd(modulated, res, g):
    y, hs, params, x, F, consts = res
    _, e, x_mod = pp.modulate(x, g, F)
    grads, dh = modulated(params, x_mod, hs, y, e, *consts)
    zeros = functools.partial(jax.tree.map, jnp.zeros_like)
    return zeros(y), dh, grads, zeros(x), zeros(F), zeros(consts)


_output.defvjp(_fwd, _bwd)


def _put(tree, path, value):
    node = tree
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = jax.tree.map(lambda z, v: v.astype(z.dtype), node[path[-1]], dict(value))


def apply(model, rule, params, x, F, *, train=False, key=None, probes=None):
    """The logits of ``model`` on ``x``; ``jax.grad`` through them is PEPITA's update (module doc)."""
    last, output = rule.option("last"), pp.OUTPUTS[rule.option("output")]
    sg = jax.lax.stop_gradient
    xs = sg(x)
    wiring = Wiring(rule, x=xs, probes=probes)
    y, _ = model.adapter.run(jax.tree.map(sg, params), None, xs, train=train, key=key, wiring=wiring)
    hs = [h for _, h in wiring.points]

    def modulated(params, x_mod, hs, y, e):
        rec = Wiring(rule, x=x_mod, record=True)
        y_mod, _ = model.adapter.run(params, None, x_mod, train=train, key=key, wiring=rec)
        n = math.prod(e.shape[:-1])
        ds = pp.deltas(last, output, n, e, y, hs, [h for _, h in rec.points], y_mod)
        grads = jax.tree.map(jnp.zeros_like, params)
        for (path, fn, h, p, out), d in zip(rec.inputs, ds, strict=True):
            g = jax.vjp(lambda p_, fn=fn, h=h: fn(h, p_), dict(p))[1](d.reshape(out.shape).astype(out.dtype))[0]
            _put(grads, path, g)
        return grads, ds[:-1]

    converted, consts = jax.closure_convert(modulated, params, x, hs, y, y)
    return _output(converted, y, hs, params, x, F, consts)
