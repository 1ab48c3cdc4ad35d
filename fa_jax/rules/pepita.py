"""PEPITA: two forward passes, no backward pass (Dellaferrera & Kreiman 2022, ICML).

"Error-driven input modulation: solving the credit assignment problem without a backward
pass", Algorithm 1, and the authors' code (``GiorgiaD/PEPITA``:
``Tutorial_PEPITA_FullyConnectedNets_CIFAR-10.ipynb``, the PyTorch fully connected version;
``functions.py``, learn type ``ERIN``, the numpy version). With ``W_l`` (fan_in, fan_out),
``h_l = f(h_{l-1} W_l + b_l)``, ``h_0 = x``, ``y = h_L W_out + b_out`` and a batch of N examples:

    standard pass:   h_l, y from x;       e = sigma(y) - target           (N, n_out)
    modulated pass:  x_mod = x + e @ F;   h_l^mod, y^mod from x_mod;  e_mod = sigma(y^mod) - target
    hidden l:        dW_l = (h_{l-1}^mod)^T (h_l - h_l^mod) / N,   db_l = sum_n (h_l - h_l^mod) / N
    output layer:    dW_out = (h_L^mod)^T e_mod / N,               db_out = sum_n e_mod / N

with ``h_0^mod = x_mod`` (the first layer multiplies the modulated input), no ``f'`` anywhere,
and ``W <- W - lr * dW`` (the code adds ``-dW``; optax does the same with these as gradients).
``F`` is fixed, of shape (n_out, n_in); the authors draw it as
``0.05 * U(-sqrt(6 / n_in), sqrt(6 / n_in))`` (the He-uniform limit of the first layer; the
tutorial's ``B``), the rule's ``init`` hook here: ``fj.init_feedback(key, model, "pepita")``
returns ``[F]`` (its dist/scaling/scale options do not apply; the scale is the option ``f_scale``).
The authors' networks have no biases; here a bias takes its layer's delta, as a weight on a
constant, unmodulated input would.

One implementation for every model (:func:`pepita_apply`). A model is seen through a *pass*,
``run(params, x, record) -> (y, hs, calls)``: the logits, the points ``h_l`` (the inputs of weighted
calls 2..L, the ones the hidden deltas are taken at) and, per weighted call, ``(where, fn, h_in, p,
out)``: its place in the params tree, its functional forward ``fn(h_in, p) = out`` (affine in
``h_in``, linear in ``p``'s weight) and its params. Two passes exist: :func:`layered_pass` (``fj.mlp``,
``fj.norm_mlp``: ``layers[l](p, h, op)`` with an op that records ``fn = h @ p["w"] + p["b"]`` at
``where = (l,)``) and :func:`flax_pass` (``fj.from_flax``: ``adapter.run`` with a recording
:class:`fa_jax.wrap.wiring.Wiring`, ``where`` = the layer's path). The standard pass runs with every
input and param behind ``stop_gradient`` and the points cut; one ``custom_vjp`` node,
:func:`pepita_output`, ties ``y`` to the points, the params, ``x`` and ``F``. Its backward receives
``g = dL/dy``, runs the modulated pass (the same dropout key: the same mask) and returns

- for weighted call l: ``vjp_p fn_l(h_in_l^mod, p_l)(delta_l)`` at ``where_l``, ``delta_l`` the hidden
  ``(h_l - h_l^mod) / N`` (reshaped to the call's output: a flatten between layers is fine), the
  last ``e_mod / N``; for a dense layer ``(h_in^mod)^T delta`` and ``sum delta``, the formulas above;
- zeros for every other param (prelu's ``alpha``, norm scales and shifts), for ``x`` and for ``F``;
- ``(h_l - h_l^mod) / N`` for the points (the signal playing ``dL/dh_l``'s role; the diagnostics read it).

The error from the cotangent: fa_jax's losses are batch means, so ``g_n = e_n / N``;
PEPITA is not linear in ``e`` (the modulation), so the rule takes ``e_n = N g_n``, N the
product of the batch axes, and averages the updates over the batch (the authors' ``/ batch_size``),
so that learning rates compare with the other rules'. For ``softmax_ce`` and ``bce`` this ``e``
is the paper's ``sigma(y) - target``. The output layer's ``e_mod`` is
``e + sigma(y^mod) - sigma(y)``: exact for a loss whose ``dL/dy`` is ``sigma(y) - target``
(``output`` picks sigma: softmax for n_out >= 2 and sigmoid for n_out = 1 by default, i.e.
softmax_ce and bce on one logit; ``"sigmoid"`` for bce on several). The authors' code takes the
output layer's update from the modulated pass's error (the default here); ``last="standard"``
uses the first pass's ``e`` instead, which holds for any loss.

Options: ``pepita(f_scale=0.05, last="modulated", output="auto")``.
Models: ``fj.mlp`` and ``fj.norm_mlp`` without batch norm (dropout keeps one mask for both
passes, as the authors' code), and wrapped Flax models (``fj.from_flax``) whose weighted layers
form a chain (:func:`check_flax`: each called once, the input of call l+1 the output of call l up to
an activation or a flatten, the last returning the logits), with floating inputs, without batch norm, DFAPoint
markers or weighted layers inside a recurrent cell or a lifted transform (``nn.scan``, ``nn.remat``, ...);
other models are refused in one line.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.rules.core import Family, Rule, register_factory

if TYPE_CHECKING:
    from fa_jax.wrap.model import FlaxModel

# a pass over a model: run(params, x, record) -> (y, points, [(where, fn, h_in, p, out), ...])
Pass = Callable[[Any, jax.Array, bool], tuple[jax.Array, list, list]]

LAST = ("modulated", "standard")
OUTPUTS = {"auto": None, "softmax": jax.nn.softmax, "sigmoid": jax.nn.sigmoid}


# -- the rule, on any pass ---------------------------------------------------------------------------

def _sigma(output, y):
    if output is not None:
        return output(y)
    return jax.nn.sigmoid(y) if y.shape[-1] == 1 else jax.nn.softmax(y, axis=-1)


def modulate(x: jax.Array, g: jax.Array, F: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(e, x_mod)`` from the output's cotangent ``g`` (..., n_out): the error ``e = N g``, N the
    product of the batch axes, and ``x + e @ F`` in ``x``'s shape (module doc)."""
    e = g * math.prod(g.shape[:-1])  # the per-example error: losses are batch means
    return e, x + (e @ F).reshape(x.shape).astype(x.dtype)


def deltas(last: str, output: Callable | None, e: jax.Array, y: jax.Array, hs: Sequence[jax.Array],
           hs_mod: Sequence[jax.Array], y_mod: jax.Array) -> list[jax.Array]:
    """Every weighted call's delta: ``(h_l - h_l^mod) / N`` per point, then ``e_mod / N``
    (``e_mod = e`` for ``last="standard"``, else ``e + sigma(y^mod) - sigma(y)``; module doc)."""
    n = math.prod(e.shape[:-1])
    e_mod = e if last == "standard" else e + _sigma(output, y_mod) - _sigma(output, y)
    return [(h - hm) / n for h, hm in zip(hs, hs_mod)] + [e_mod / n]


def _place(tree, where, update):
    """Puts ``update`` ({param name: array}) into the params-shaped ``tree`` at the path ``where``."""
    for k in where[:-1]:
        tree = tree[k]
    node = tree[where[-1]]
    tree[where[-1]] = {**node, **{k: v.astype(node[k].dtype) for k, v in update.items()}}


def updates(run: Pass, last: str, output: Callable | None, params: Any, x_mod: jax.Array, hs: list, y: jax.Array,
            e: jax.Array) -> tuple[Any, list]:
    """``(param updates, point cotangents)``: the modulated pass ``run(params, x_mod, True)`` and each
    weighted call's ``vjp_p fn(h_in^mod, p)(delta)`` at its place, zeros elsewhere (module doc)."""
    y_mod, hs_mod, calls = run(params, x_mod, True)
    ds = deltas(last, output, e, y, hs, hs_mod, y_mod)
    grads = jax.tree.map(jnp.zeros_like, params)
    for (where, fn, h, p, out), d in zip(calls, ds, strict=True):
        _place(grads, where, _param_update(fn, h, p, d.reshape(out.shape).astype(out.dtype)))
    return grads, ds[:-1]


def _param_update(fn, h, p, d):
    """``vjp_p fn(h, p)(d)``; for the dense map of :func:`layered_pass` written out, ``h^T d`` and
    ``sum d`` over the batch axes (as :func:`fa_jax.rules.ops.fa_linear`'s backward: XLA computes a
    vjp's ``dot_general`` over axis 0 to other bits than ``h.T @ d`` outside ``jit`` and for extra
    batch axes)."""
    if fn is _dense:
        h2, d2 = h.reshape(-1, h.shape[-1]), d.reshape(-1, d.shape[-1])
        return {"w": h2.T @ d2, "b": d2.sum(0)}
    return jax.vjp(lambda p_: fn(h, p_), dict(p))[1](d)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def pepita_output(modulated: Callable, y: jax.Array, hs: list, params: Any, x: jax.Array, F: jax.Array,
                  consts: list) -> jax.Array:
    """Identity on ``y`` whose backward returns PEPITA's updates (module doc) as the cotangents.

    modulated: ``(params, x_mod, hs, y, e, *consts) -> (param updates, point cotangents)``
    (:func:`updates`, closure-converted); y: (..., n_out); hs: the standard pass's points;
    x: (..., *input_shape); F: (n_out, prod(input_shape)); consts: arrays ``modulated`` closes over.
    """
    return y


def _fwd(modulated, y, hs, params, x, F, consts):
    return y, (y, hs, params, x, F, consts)


def _bwd(modulated, res, g):
    y, hs, params, x, F, consts = res
    e, x_mod = modulate(x, g, F)
    grads, dh = modulated(params, x_mod, hs, y, e, *consts)
    zeros = functools.partial(jax.tree.map, jnp.zeros_like)
    return zeros(y), dh, grads, zeros(x), zeros(F), zeros(consts)


pepita_output.defvjp(_fwd, _bwd)


def pepita_apply(run: Pass, last: str, output: Callable | None, params: Any, x: jax.Array, F: jax.Array) -> jax.Array:
    """The logits of the pass ``run`` (module doc) on ``x``; ``jax.grad`` through them is PEPITA's update."""
    sg = jax.lax.stop_gradient
    y, hs, _ = run(jax.tree.map(sg, params), sg(x), False)
    converted, consts = jax.closure_convert(functools.partial(updates, run, last, output), params, x, hs, y, y)
    return pepita_output(converted, y, hs, params, x, F, consts)


# -- the passes: built-in layered models and wrapped Flax models ----------------------------------

def _dense(h, p):
    return h @ p["w"] + p["b"]


class _Recording:
    """The op of layer ``where`` (a :class:`fa_jax.rules.ops.LayerOp`): the plain map, each call
    kept in ``calls`` as ``(where, fn, h, p, out)``."""

    def __init__(self, where, calls):
        self.where, self.calls = where, calls

    def _run(self, fn, h, p):
        out = fn(h, p)
        self.calls.append((self.where, fn, h, p, out))
        return out

    def __call__(self, h, w, b):
        return self._run(_dense, h, {"w": w, "b": b})

    def apply(self, fn, h, w, b):
        return self._run(lambda h_, p: fn(h_, p["w"]) + p["b"], h, {"w": w, "b": b})


def layered_pass(layers: Sequence[Callable]) -> Pass:
    """The pass of a layered model (module doc): ``layers[l](p, h, op)``, every layer's input cut, the
    points the layers' outputs but the last."""

    def run(params, x, record):
        del record  # both passes record (the standard pass's calls go unused)
        calls, hs, h = [], [], x
        for l, (layer, p) in enumerate(zip(layers, params)):
            h = layer(p, jax.lax.stop_gradient(h), _Recording((l,), calls))
            hs.append(h)
        return hs[-1], hs[:-1], calls

    return run


def flax_pass(model: FlaxModel, rule: Rule, *, train: bool = False, key: jax.Array | None = None,
              probes: list | None = None) -> Pass:
    """The pass of a wrapped Flax model (module doc): ``model.adapter.run`` under ``rule``'s
    :class:`fa_jax.wrap.wiring.Wiring` (its points cut), the standard one with the ``probes``."""
    from fa_jax.wrap.wiring import Wiring  # flax loads with fj.from_flax only

    def run(params, x, record):
        wiring = Wiring(rule, x=x, probes=None if record else probes, record=record)
        y, _ = model.adapter.run(params, None, x, train=train, key=key, wiring=wiring)
        return y, [h for _, h in wiring.points], wiring.inputs

    return run


def _wire(last, output):
    def wire(layers, params, x, feedback):
        return pepita_apply(layered_pass(layers), last, output, params, x, feedback[0])

    return wire


def _wire_model(last: str, output: Callable | None) -> Callable:
    def wire_model(model, params, x, feedback, *, rule, train=False, key=None, probes=None):
        run = flax_pass(model, rule, train=train, key=key, probes=probes)
        return pepita_apply(run, last, output, params, x, feedback[0])

    return wire_model


# -- the models it runs on -------------------------------------------------------------------------

def check_flax(model: FlaxModel) -> None:
    """One-line InputError unless PEPITA runs on the wrapped ``model``: a chain (module doc)."""
    from fa_jax.wrap.wiring import path_name

    head = "rule 'pepita' on a wrapped Flax model"
    if model.stateful:
        raise InputError(f"{head}: the model has state collections (batch norm), which PEPITA's two passes "
                         f"would both update; use a model without batch norm")
    if not jnp.issubdtype(jnp.dtype(model.input_dtype), jnp.floating):
        raise InputError(f"{head}: its inputs are {model.input_dtype} (token ids); PEPITA adds e @ F to the input, "
                         f"so it trains models with floating inputs only: train this one with bp or an FA- or "
                         f"DFA-family rule")
    if model.lifted:
        raise InputError(f"{head}: layer {path_name(model.lifted[0])} runs inside a recurrent cell or a lifted "
                         f"transform (nn.scan, nn.vmap, nn.remat, nn.jit), whose arrays PEPITA's second pass cannot "
                         f"reach: call the layer outside the transform, or train with bp or an FA- or DFA-family rule")
    if model.markers:
        raise InputError(f"{head}: the module places DFAPoint markers ({', '.join(model.point_names)}), and PEPITA "
                         f"takes its points at the inputs of the weighted layers only: wrap a version of the module "
                         f"without DFAPoint markers")
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


def _check_model(model):
    from fa_jax.models.mlp import MLP  # models import the rules
    from fa_jax.wrap.model import FlaxModel  # no flax import: the adapters load with from_flax

    if isinstance(model, FlaxModel):
        return check_flax(model)
    if not isinstance(model, MLP) or getattr(model, "norm", "none") == "batch":
        what = "batch norm" if isinstance(model, MLP) else type(model).__name__
        raise InputError(f"rule 'pepita' runs on fj.mlp, fj.norm_mlp without batch norm and wrapped Flax "
                         f"chains (it reruns the layers on a modulated input); got {what}")


def _shapes(model):
    return [(model.n_out, model.n_in)]


def _init(f_scale):
    def init(key, model, params, dtype):
        """``[F]``, F (n_out, n_in) ~ ``f_scale * U(-sqrt(6 / n_in), sqrt(6 / n_in))`` (module doc)."""
        del params
        _check_model(model)
        a = f_scale * math.sqrt(6.0 / model.n_in)
        return [jax.random.uniform(key, (model.n_out, model.n_in), dtype, minval=-a, maxval=a)]

    return init


def pepita(f_scale: float = 0.05, last: str = "modulated", output: str = "auto") -> Rule:
    """The PEPITA :class:`fa_jax.Rule`: F's scale ``f_scale`` > 0 (the authors' 0.05), the output
    layer's error ``last`` (:data:`LAST`) and its nonlinearity ``output`` (:data:`OUTPUTS`; module doc)."""
    checks.positive_number("pepita: f_scale", f_scale)
    checks.choice("pepita option last", last, LAST)
    checks.choice("pepita option output", output, tuple(OUTPUTS))
    return Rule("pepita", _wire(last, OUTPUTS[output]), _shapes,
                f"PEPITA: a second forward pass on x + e @ F, F ~ {f_scale:g} * U(+-sqrt(6/n_in)) "
                f"(Dellaferrera & Kreiman 2022)", init=_init(float(f_scale)), check_model=_check_model,
                family=Family.FORWARD, wire_model=_wire_model(last, OUTPUTS[output]))


register_factory("pepita", pepita)
