"""What a rule does inside one forward pass of a wrapped Flax model, for linen and NNX alike.

The adapters (:mod:`fa_jax.wrap.linen`, :mod:`fa_jax.wrap.nnx`) run the user's module
unchanged and hand every call of a weighted layer (``Dense``, ``Conv``, ... : a map affine in
its input, linear in its ``kernel`` param) and of a :class:`fa_jax.DFAPoint` marker to the
:class:`Wiring` of the pass, which asks the rule (:class:`fa_jax.Rule`) what the call returns,
through the interface fa_jax's own layers use (no rule is named here):

- a weighted layer runs ``rule.op(B).layer(fn, h, p, plain)`` with ``B`` the layer's feedback (FA
  family: the plain forward, but the input receives ``vjp_h fn(., kernel=B_used)`` instead of
  ``vjp_h fn(., kernel=W)``, :func:`fa_jax.rules.ops.fa_layer`, for a dense layer ``delta @ B.T``;
  BP's op: the plain call);
- every *point* records its activation ``h`` (alive in the graph above it) and passes
  ``rule.point(h)`` on to the layers that read it: ``stop_gradient(h)`` where the rule cuts the
  graph there (DFA family: after the forward, the rule's output node sends ``source @ B_p`` to each
  recorded ``h``, and between points gradients flow by ordinary BP, as in TinyDFA; forward-only
  rules, pepita: the points' cotangents are its own, :mod:`fa_jax.rules.pepita`), else ``h``;
- ``record=True`` also keeps each weighted call's input and ``fn``.

Points: the ``DFAPoint`` markers when the model has any; otherwise the input of every
weighted-layer call but the first (and none that is the model's input itself), i.e. each weighted layer's
output after what follows it (activation, pooling, flattening) up to the next weighted layer.
One array read by several layers (a residual block's input) is one point. A default point cuts
the graph only at the weighted layers that read it: where the same array also reaches the output
another way (a residual block's identity shortcut), gradients flow along that way by BP, through
the earlier points and down to the stem. Markers cut every use, so a residual net's DFA points are
best placed with markers (one per block: Launay et al.'s "macro" DFA). ``probes`` (the
diagnostics) add a zero array at every point, under any rule.

Recurrent cells (``flax.linen`` ``RNNCellBase``: ``GRUCell``, ``SimpleCell``, ``LSTMCell``, ...,
scanned over time by ``nn.RNN``): their weighted layers are wired like any other (FA: ``delta @ B.T``
to the step's input and to the previous hidden state, so FA's signal runs back through time), but
no point is made inside a cell (its arrays live inside the scan); the RNN's output sequence, read
by the next weighted layer, is a point with one entry per step. Under a rule that cuts its points the cell's
carry enters through ``stop_gradient``: each step's hidden state receives only its own
``e_t @ B``, with no signal through time, and the cell's weights learn from ``dh_t/dW`` at a fixed
previous state.

Lifted transforms (``nn.scan``, ``nn.vmap``, ``nn.remat``, ``nn.jit``, ... : any call that runs
under another JAX trace than the pass, found by ``jax.extend.core.get_opaque_trace_state``): their
weighted layers are wired like any other (FA: ``delta @ B.T``), but no point is made inside them and
a marker there is refused (their arrays live inside the transform); the array that a weighted layer
after the transform reads is a point as usual, so under the DFA family BP runs through the whole
transformed block from the point after it. A ``fj.DFAPoint()`` placed before the transform (outside
it) adds a point at its input. A kernel the transform stacks (``nn.scan`` or ``nn.vmap`` over params:
each call uses one slice) has no FA feedback of its own, so the FA family refuses it
(:attr:`fa_jax.wrap.model.FlaxModel.stacked`); PEPITA refuses every layer inside a transform. NNX
transforms run copies of their modules that the NNX adapter does not reach: refused when wrapped.

The error taken elsewhere: a :class:`fa_jax.DFAOutput` marker puts the DFA family's output node
on its input ``h`` instead of the logits: ``e = dL/dh`` (the layers above it, e.g. a final norm and
the unembedding, train by BP), ``B`` of shape ``(prod(h's feature shape), prod(point shape))``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
from jax.extend.core import get_opaque_trace_state

from fa_jax.errors import InputError
from fa_jax.rules.ops import linear

if TYPE_CHECKING:
    from fa_jax.rules.ops import LayerFn
    from fa_jax.rules.rule import Rule

ModulePath = Sequence[Hashable]  # a module's path: names and list indices, e.g. ("block", "Dense_0")


def path_name(path: ModulePath) -> str:
    """``("block", "Dense_0")`` -> ``"block/Dense_0"``; the root is ``"(root)"``."""
    return "/".join(map(str, path)) or "(root)"


class Wiring:
    """One forward pass under ``rule`` (module doc); ``rule=None`` only records (discovery).

    Args:
        rule: a :class:`fa_jax.Rule`, or None.
        matrices: ``{kernel path: B}``, each weighted layer's feedback (FA family; absent: None).
        markers: True when the model's points are its ``DFAPoint`` markers.
        x: the model's input (never a default point).
        probes: None, or one array per point, added to it.
        record: keep ``(path, fn, input, params, output)`` of every weighted call in ``inputs``.
    """

    def __init__(self, rule: Rule | None = None, matrices: Mapping[tuple, jax.Array] | None = None, *,
                 markers: bool = False, x: jax.Array | None = None, probes: Sequence[jax.Array] | None = None,
                 record: bool = False):
        self.rule = rule
        self.matrices = matrices or {}
        self.markers = markers
        self.x = x
        self.probes = probes
        self.points = []  # (name, live activation), in call order
        self.calls = []   # (path, kind, kernel shape, input shape, output shape): discovery
        self.modules = {}  # path -> type name of every module called: discovery
        self._seen = {}   # id(array) -> the value passed on, for arrays that are points already
        self._quiet = 0
        self._n_weighted = 0
        self.found_markers = []
        self._repeats = {}
        self.record = record
        self.inputs = []  # (path, fn, h, p, out) per weighted call, with record=True
        self._cells = []  # the recurrent cells being run (innermost last)
        self.output_node = None  # h -> DFA output node on h (a DFA-family pass with a DFAOutput marker)
        self.output_at = None  # (path name, number of points before it, shape) of the DFAOutput marker
        self.lifted = []  # paths of the weighted layers called inside a lifted transform, in call order
        self._trace = None  # the trace the module runs under (begin)

    def begin(self) -> None:
        """Called by the adapter just before it runs the module: calls under another trace are inside a
        lifted transform (module doc)."""
        self._trace = get_opaque_trace_state(convention="flax")

    def _in_lifted(self):
        return self._trace is not None and get_opaque_trace_state(convention="flax") != self._trace

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Calls inside (a layer's own functional forward) are not intercepted."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    @property
    def active(self) -> bool:
        return not self._quiet

    def module(self, path: ModulePath, kind: str) -> None:
        self.modules.setdefault(tuple(path), kind)

    def _point(self, name, h):
        """Record ``h`` as a point; return what the layers after it see."""
        seen = self._seen.get(id(h))
        if seen is not None and seen[0] is h:
            return seen[1]
        i = len(self.points)
        live = h
        if self.probes is not None:
            if i >= len(self.probes):
                raise InputError(f"the model has more DFA points than the {len(self.probes)} probes given")
            live = h + self.probes[i].astype(h.dtype)
        self.points.append((name, live))
        out = live if self.rule is None else self.rule.point(live)
        self._seen[id(h)] = (h, out)  # h kept alive: its id is not reused within the pass
        return out

    def _not_in_cell(self, what, path):
        if self._cells:
            raise InputError(f"{what} {path_name(path)} is inside the recurrent cell {self._cells[-1]}, whose "
                             f"arrays live inside a scan over time: place it on the RNN's output sequence")
        if self._in_lifted():
            raise InputError(f"{what} {path_name(path)} is called inside a lifted transform (nn.scan, nn.vmap, "
                             f"nn.remat, nn.jit, ...), whose arrays live inside it: place it on the transform's "
                             f"output, outside it")

    def cell(self, path: ModulePath, call: Callable[..., Any], carry: Any, *rest: Any) -> Any:
        """A recurrent cell's step ``call(carry, *rest)`` (module doc): no points inside it; under the
        rule that cuts its points (DFA family, pepita) its carry enters through ``stop_gradient`` (no
        signal through time)."""
        if self.rule is not None and self.rule.cuts_points:
            carry = jax.tree.map(jax.lax.stop_gradient, carry)
        self._cells.append(path_name(path))
        try:
            return call(carry, *rest)
        finally:
            self._cells.pop()

    def output(self, path: ModulePath, h: jax.Array) -> jax.Array:
        """A ``DFAOutput`` call: the DFA family's output node on ``h`` (module doc); the identity otherwise."""
        self._not_in_cell("DFAOutput", path)
        if self.output_at is not None:
            raise InputError(f"the model calls DFAOutput twice ({self.output_at[0]} and {path_name(path)}): the error "
                             f"is taken at one place")
        self.output_at = (path_name(path), len(self.points), tuple(h.shape))
        if self.output_node is None:
            return h
        return self.output_node(h, [live for _, live in self.points])

    def marker(self, path: ModulePath, h: jax.Array) -> jax.Array:
        """A ``DFAPoint`` call: a point when the model's points are its markers (the marker is the
        identity outside DFA and probes); otherwise only noted (``found_markers``)."""
        self._not_in_cell("DFAPoint", path)
        if self.output_at is not None and self.markers:
            raise InputError(f"DFAPoint {path_name(path)} comes after the DFAOutput marker {self.output_at[0]}: "
                             f"points must come before the place the error is taken")
        if not self.markers:
            self.found_markers.append(path_name(path))
            return h
        return self._point(path_name(path), h)

    def weighted(self, path: ModulePath, kind: str, fn: LayerFn, h: jax.Array, p: Any,
                 plain: Callable[[jax.Array], jax.Array]) -> jax.Array:
        """A weighted-layer call: ``fn(h, p)`` is its functional forward, ``plain(h)`` the call
        itself; ``p`` its params (with ``"kernel"``)."""
        path = tuple(path)
        first = self._n_weighted == 0
        self._n_weighted += 1
        lifted = bool(self._cells) or self._in_lifted()
        if lifted and path not in self.lifted:
            self.lifted.append(path)
        if not self.markers and not first and h is not self.x and not lifted and self.output_at is None:
            name = path_name(path)
            k = self._repeats.get(name, 0)
            self._repeats[name] = k + 1
            h = self._point(name + (f"@{k}" if k else ""), h)
        op = linear if self.rule is None else self.rule.op(self.matrices.get(path))
        out = op.layer(fn, h, p, plain)
        if self.record:
            self.inputs.append((path, fn, h, p, out))
        if self.rule is None and not (lifted and any(c[0] == path for c in self.calls)):  # a scan traces twice
            self.calls.append((path, kind, tuple(p["kernel"].shape), tuple(h.shape), tuple(out.shape)))
        return out
