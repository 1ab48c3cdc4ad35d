"""Lazy baselines as wirings: the NTK regime (a gated linear unit) and random features.

After Daniely & Malach, "Learning Parities with Neural Networks" (NeurIPS 2020) and their
released code (``emalach/ParityNN``, ``parity_for_nips.py``; Keras), as in the thesis chapter on
BP vs DFA vs lazy methods on parity (sections 1.3.1-1.3.2). All apply to depth-two networks
``fj.mlp([n_in, width, n_out])`` and train through the same ``apply`` + ``jax.grad`` +
optax path as BP/FA/DFA. Frozen arrays are a non-trainable pytree passed as ``feedback``
(``{"w": (n_in, width), "b": (width,)}``), drawn by the rule's ``init`` hook
(:func:`fa_jax.init_feedback`); they never reach the optimizer.

- ``ntk``: ``h = (x W + b) * 1[x W0 + b0 > 0]``, ``y = h W2 + b2``. ``W, b, W2, b2`` train;
  the gate layer ``W0, b0`` is frozen. Authors' code ("GaLU"): ``W0`` drawn independently,
  Glorot-uniform (Keras' Dense default), ``b0 = 0``.
- ``ntk_copy``: the same, with the gate a frozen copy of the first layer's initial
  ``W, b`` (``gate="copy"``), so at step 0 the network equals the ReLU network.
- ``rf_gaussian``: random Fourier features ``h = cos(x W0 + b0)``, ``W0 ~ N(0, (4/sqrt(n_in))^2)``,
  ``b0 ~ U[0, 2 pi]`` (authors' code); only the readout trains.
- ``rf_relu``: ``h = relu(x W0 + b0)``, ``W0`` Glorot-uniform, ``b0 = 0`` (authors' code).
- ``rf_linear``: ``h = x W0 + b0`` (no nonlinearity), ``W0`` Glorot-uniform, ``b0 = 0``
  (the thesis chapter's "linear features"; not in the authors' code).

The hidden nonlinearity is the method's own: these rules ignore the model's ``activation``.
For ``rf_*`` the first layer's params entry is ``{}`` (the ``trainable`` hook), so no gradient
is computed for it and the optimizer holds no state for it. Gradients of the trainable part
are BP's on the method's graph (tests hold them against hand formulas).
"""

import math

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import contract
from fa_jax.models import init as inits
from fa_jax.rules.core import RULES, Family, Rule, linear, register


def _check_depth_two(name):
    def check(model):
        sizes = contract.dense_sizes(model)
        if sizes is None or len(sizes) != 3:
            raise InputError(f"rule {name!r} needs a depth-two MLP [n_in, width, n_out] (one hidden layer), "
                             f"got {'sizes ' + str(sizes) if sizes else type(model).__name__}")
    return check


def _need_frozen(name, frozen):
    if not (isinstance(frozen, dict) and {"w", "b"} <= set(frozen)):
        raise InputError(f"rule {name!r} needs its frozen layer as feedback={{'w', 'b'}} "
                         f"(make it with fj.init_feedback(key, model, {name!r}, params=params))")


def _ntk_wire(name):
    def wire(layers, params, x, feedback):
        _need_frozen(name, feedback)
        w0, b0 = jax.lax.stop_gradient(feedback["w"]), jax.lax.stop_gradient(feedback["b"])
        gate = (linear(x, w0, b0) > 0).astype(x.dtype)
        h = linear(x, params[0]["w"], params[0]["b"]) * gate
        return layers[-1](params[-1], h, linear)
    return wire


def _rf_wire(name, act):
    def wire(layers, params, x, feedback):
        _need_frozen(name, feedback)
        h = act(linear(x, jax.lax.stop_gradient(feedback["w"]), jax.lax.stop_gradient(feedback["b"])))
        return layers[-1](params[-1], h, linear)
    return wire


def _glorot_zero(key, model, params, dtype):
    shape = contract.weight_shapes(model)[0]
    return {"w": inits.glorot_uniform(key, shape, dtype), "b": jnp.zeros(shape[1:], dtype)}


def _gaussian_fourier(key, model, params, dtype):
    (n_in, width) = contract.weight_shapes(model)[0]
    kw, kb = jax.random.split(key)
    return {"w": (4.0 / math.sqrt(n_in)) * jax.random.normal(kw, (n_in, width), dtype),
            "b": jax.random.uniform(kb, (width,), dtype, 0.0, 2.0 * math.pi)}


def _copy_first_layer(key, model, params, dtype):
    del key
    if params is None:
        raise InputError("rule 'ntk_copy' copies the initial first layer: pass params= to fj.init_feedback")
    return {"w": jnp.asarray(params[0]["w"], dtype), "b": jnp.asarray(params[0]["b"], dtype)}


def _with_check(name, draw):
    check = _check_depth_two(name)

    def init(key, model, params, dtype=jnp.float32):
        check(model)
        return draw(key, model, params, dtype)
    return init


def _freeze_first(params):
    return [{}] + list(params[1:])


def _lazy_rule(name, wire, draw, trainable, doc):
    return Rule(name, wire, None, doc, init=_with_check(name, draw), trainable=trainable,
                check_model=_check_depth_two(name), family=Family.LAZY)


LAZY = {
    "ntk": _lazy_rule("ntk", _ntk_wire("ntk"), _glorot_zero, None,
                      "NTK regime: (x W + b) * 1[x W0 + b0 > 0], frozen independent gate (Daniely & Malach)"),
    "ntk_copy": _lazy_rule("ntk_copy", _ntk_wire("ntk_copy"), _copy_first_layer, None,
                           "NTK regime with the gate a frozen copy of the initial first layer"),
    "rf_gaussian": _lazy_rule("rf_gaussian", _rf_wire("rf_gaussian", jnp.cos), _gaussian_fourier, _freeze_first,
                              "random Fourier features cos(x W0 + b0); only the readout trains"),
    "rf_relu": _lazy_rule("rf_relu", _rf_wire("rf_relu", jax.nn.relu), _glorot_zero, _freeze_first,
                          "random ReLU features relu(x W0), Glorot W0; only the readout trains"),
    "rf_linear": _lazy_rule("rf_linear", _rf_wire("rf_linear", lambda a: a), _glorot_zero, _freeze_first,
                            "random linear features x W0, Glorot W0; only the readout trains"),
}

for _rule in LAZY.values():
    if _rule.name not in RULES:
        register(_rule)


def ntk_rule(gate: str = "independent") -> Rule:
    """The NTK-regime rule: ``gate="independent"`` (``"ntk"``, authors' code) or ``"copy"`` (``"ntk_copy"``)."""
    names = {"independent": "ntk", "copy": "ntk_copy"}
    checks.choice("ntk gate", gate, names)
    return LAZY[names[gate]]
