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

How ``jax.grad`` returns this: the standard pass runs with every input and param behind
``stop_gradient``; one ``custom_vjp`` node, :func:`pepita_output`, ties ``y`` to the hidden
activations, the params, ``x`` and ``F``. Its backward receives ``g = dL/dy``, runs the
modulated pass through the same layers (``layers[l](p, h, linear)``) and returns the updates
above as the params' cotangents and ``(h_l - h_l^mod) / N`` as the hidden activations'
(the signal playing ``dL/dh_l``'s role, which the diagnostics read); ``x`` and ``F`` get zeros.

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

Options: ``pepita(f_scale=0.05, last="modulated", output="auto")``. Params other than ``w``
and ``b`` (prelu's ``alpha``, layer norm's ``scale`` and ``shift``) get a zero update.
Models: ``fj.mlp`` and ``fj.norm_mlp`` without batch norm (dropout keeps one mask for both
passes, as the authors' code), and wrapped Flax models (``fj.from_flax``) whose weighted layers
form a chain, without batch norm or DFAPoint markers (:mod:`fa_jax.wrap.pepita`: a weighted
layer's update is ``vjp_p fn(h^mod, p)(delta)``, for a dense layer the formulas above); other
models are refused in one line.
"""

import functools
import math

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.rules.core import Family, Rule, linear, register_factory
from fa_jax.errors import InputError

LAST = ("modulated", "standard")
OUTPUTS = {"auto": None, "softmax": jax.nn.softmax, "sigmoid": jax.nn.sigmoid}


def _forward(layers, params, x):
    """Every activation [h_1, ..., h_L, y] of the plain chain."""
    hs, h = [], x
    for layer, p in zip(layers, params):
        h = layer(p, h, linear)
        hs.append(h)
    return hs


def _flat(a):
    return a.reshape(-1, a.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def pepita_output(modulated, last, output, y, hs, params, x, F, consts):
    """Identity on ``y`` whose backward returns PEPITA's updates (module doc) as the cotangents.

    modulated: ``(params, x, *consts) -> [h_1, ..., h_L, y]``, the network (closure-converted);
    last: one of :data:`LAST`; output: sigma, ``(y) -> (..., n_out)``, or None (auto).
    y: (..., n_out); hs[l]: (..., h_l) the standard pass's hidden activations; params: one dict per
    layer; x: (..., n_in); F: (n_out, n_in); consts: arrays ``modulated`` closes over.
    """
    return y


def _fwd(modulated, last, output, y, hs, params, x, F, consts):
    return y, (y, hs, params, x, F, consts)


def _sigma(output, y):
    if output is not None:
        return output(y)
    return jax.nn.sigmoid(y) if y.shape[-1] == 1 else jax.nn.softmax(y, axis=-1)


def modulate(x, g, F):
    """``(n, e, x_mod)`` from the output's cotangent ``g`` (..., n_out): the batch size N (the
    product of the batch axes), the error ``e = N g`` and ``x + e @ F`` in ``x``'s shape (module doc)."""
    n = math.prod(g.shape[:-1])
    e = g * n  # the per-example error: losses are batch means
    return n, e, x + (e @ F).reshape(x.shape).astype(x.dtype)


def deltas(last, output, n, e, y, hs, hs_mod, y_mod):
    """Every layer's delta: ``(h_l - h_l^mod) / N`` per hidden activation, then ``e_mod / N``
    (``e_mod = e`` for ``last="standard"``, else ``e + sigma(y^mod) - sigma(y)``; module doc)."""
    e_mod = e if last == "standard" else e + _sigma(output, y_mod) - _sigma(output, y)
    return [(h - hm) / n for h, hm in zip(hs, hs_mod)] + [e_mod / n]


def _bwd(modulated, last, output, res, g):
    y, hs, params, x, F, consts = res
    n, e, x_mod = modulate(x, g, F)
    acts = modulated(params, x_mod, *consts)
    ds = deltas(last, output, n, e, y, hs, acts[:-1], acts[-1])
    grads = []
    for p, inp, d in zip(params, [x_mod] + acts[:-1], ds):
        q = jax.tree.map(jnp.zeros_like, p)
        q["w"] = (_flat(inp).T @ _flat(d)).astype(p["w"].dtype)
        q["b"] = _flat(d).sum(0).astype(p["b"].dtype)
        grads.append(q)
    zeros = functools.partial(jax.tree.map, jnp.zeros_like)
    return jnp.zeros_like(y), ds[:-1], grads, zeros(x), zeros(F), zeros(consts)


pepita_output.defvjp(_fwd, _bwd)


def _wire(last, output):
    def wire(layers, params, x, feedback):
        sg = jax.lax.stop_gradient
        hs = _forward([lambda p, h, op, layer=layer: layer(sg(p), sg(h), op) for layer in layers], params, x)
        modulated, consts = jax.closure_convert(functools.partial(_forward, layers), params, x)
        return pepita_output(modulated, last, output, hs[-1], hs[:-1], params, x, feedback[0], consts)

    return wire


def _wire_model(model, params, x, feedback, *, rule, train=False, key=None, probes=None):
    from fa_jax.wrap import pepita as wrapped  # flax loads with fj.from_flax only

    return wrapped.apply(model, rule, params, x, feedback[0], train=train, key=key, probes=probes)


def _shapes(model):
    return [(model.n_out, model.n_in)]


def _check_model(model):
    from fa_jax.models.mlp import MLP  # models import the rules
    from fa_jax.wrap.model import FlaxModel  # no flax import: the adapters load with from_flax

    if isinstance(model, FlaxModel):
        from fa_jax.wrap import pepita as wrapped

        return wrapped.check(model, "pepita")
    if not isinstance(model, MLP) or getattr(model, "norm", "none") == "batch":
        what = "batch norm" if isinstance(model, MLP) else type(model).__name__
        raise InputError(f"rule 'pepita' runs on fj.mlp, fj.norm_mlp without batch norm and wrapped Flax "
                         f"chains (it reruns the layers on a modulated input); got {what}")


def _init(f_scale):
    def init(key, model, params, dtype):
        """``[F]``, F (n_out, n_in) ~ ``f_scale * U(-sqrt(6 / n_in), sqrt(6 / n_in))`` (module doc)."""
        del params
        _check_model(model)
        a = f_scale * math.sqrt(6.0 / model.n_in)
        return [jax.random.uniform(key, (model.n_out, model.n_in), dtype, minval=-a, maxval=a)]

    return init


def pepita(f_scale: float = 0.05, last: str = "modulated", output: str = "auto"):
    """The PEPITA :class:`fa_jax.Rule`: F's scale ``f_scale`` > 0 (the authors' 0.05), the output
    layer's error ``last`` (:data:`LAST`) and its nonlinearity ``output`` (:data:`OUTPUTS`; module doc)."""
    checks.positive_number("pepita: f_scale", f_scale)
    checks.choice("pepita option last", last, LAST)
    checks.choice("pepita option output", output, tuple(OUTPUTS))
    return Rule("pepita", _wire(last, OUTPUTS[output]), _shapes,
                f"PEPITA: a second forward pass on x + e @ F, F ~ {f_scale:g} * U(+-sqrt(6/n_in)) "
                f"(Dellaferrera & Kreiman 2022)", init=_init(float(f_scale)), check_model=_check_model,
                family=Family.FORWARD, wire_model=_wire_model)


register_factory("pepita", pepita)
