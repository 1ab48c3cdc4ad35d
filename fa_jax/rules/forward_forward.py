"""Forward-Forward: every hidden layer learns to tell true labels from wrong ones by its goodness (Hinton 2022).

"The Forward-Forward Algorithm: Some Preliminary Investigations" (arXiv 2212.13345), sections 2-3.3,
checked against a well-known PyTorch port (``mohammadpz/pytorch_forward_forward``, ``main.py``).
``ff(theta=2.0, neg="label", label="concat", predict="goodness")`` (spec ``"ff(theta=1.5)"``), on
``fj.mlp`` and ``fj.norm_mlp(norm="none")`` (dropout allowed) with at least one hidden layer.
K = n_out classes (K = 2 for a binary task: one logit, labels in {-1, +1}, class ``y > 0``).

Label input (the label is part of the input; ``onehot(c)`` (B, K)):

- ``label="concat"`` (default): the one-hot concatenated to the input, with the first layer's weight
  split as ``[W_x; W_label]``: ``z_1 = x W_x + onehot(c) label_w + b_1``. ``label_w`` (K, h_1) is a
  trainable extra at ``params[0]["label_w"]`` (:meth:`Rule.init_params`), drawn as rows n_in..n_in+K-1
  of the model's own initializer for a (n_in + K, h_1) kernel (the fan-in the concatenated input has);
- ``label="overlay"`` (Hinton's MNIST choice): the one-hot written into the first K input features,
  ``x[:, :K] = onehot(c)`` (entries 0 and 1; the port writes the batch's max pixel instead of 1).
  Needs n_in >= K.

Negative data (``neg="label"``, the only kind implemented): the same input with a wrong label
``(c + randint(1, K)) % K`` drawn from the objective's key (always wrong; the port's random
permutation of the labels keeps the true one now and then).

Each hidden layer l = 1..L (``h_l`` its activation, n_l units):

    goodness        G_l = mean_j h_{l,j}^2                                   (B,)
    layer loss      loss_l = mean_b [softplus(theta - G_l^pos) + softplus(G_l^neg - theta)]
    its input       h_0 = x with the label (raw);  l > 1: sg(h_{l-1} / sqrt(mean_j h_{l-1,j}^2 + eps))

``softplus(theta - G)`` is the paper's ``-log p(positive)`` with ``p = sigmoid(G - theta)``. Choices:
the MEAN over units (the port's; the paper sums), so theta does not scale with the width (default
2.0, the port's); the port averages the 2B terms of pos and neg together, half of ``loss_l`` here.
Between layers, the paper's length normalization scaled to unit RMS (``h / ||h|| * sqrt(n)``, up to
eps = 1e-8): the next layer's input has unit mean square at any width, as a z-scored input does, and
scaling ``h_{l-1}`` by c > 0 leaves the next layer's update unchanged (its goodness is not passed on).
``sg`` (stop_gradient) cuts every layer from the others: ``jax.grad`` of ``sum_l loss_l`` gives each
hidden layer the gradient of its own loss only (the paper's and the port's local update). The first
layer's input is not normalized (the port normalizes it as well). All layers learn at every step
from each batch, as in the paper; the port trains the layers greedily, one after the other.

Readout: the model's last (logits) layer is a linear readout trained with the task's loss (softmax_ce:
the paper's softmax) on ``sg(unit_rms(h_L))`` from a pass with the neutral label (every entry 1/K), in
both prediction modes (the paper feeds the readout all hidden layers but the first; here it reads the
last hidden layer, the one the logits layer's kernel takes).

Prediction (``predict``, evaluation; :func:`goodness_logits`):

- ``"goodness"`` (default): run the net with every label c = 0..K-1 and sum the goodness over the
  hidden layers but the first (the paper's choice; the port sums all; with one hidden layer, that
  one); the logits (B, K) are these sums (argmax = the prediction); for a binary task the one logit
  is ``G(class 1) - G(class 0)`` (sign = the prediction);
- ``"readout"``: the readout's logits on the neutral-label pass.

The objective's value (the logged loss) is ``sum_l loss_l + readout loss``, whose ``jax.grad`` is the
update; ``Aux.metrics``: ``ff_loss`` (``sum_l loss_l``), ``readout_loss`` and ``goodness_pos`` /
``goodness_neg`` (the batch's mean G over the hidden layers); ``Aux.logits`` the readout's logits, so
the sweep's mini-batch training accuracy is the readout's in both modes (the goodness prediction would
add K label passes to every step: ~4x the step's cost for 10 classes), while evaluation (test
accuracy, early stopping) scores ``predict``. A training step is one stacked pass of three copies
of the batch (positive, negative, neutral): about 3 forward passes, each layer's local backward. In goodness
mode the sweep's test loss is the task's loss of the goodness logits, which nothing trains to be a
calibrated loss: compare the accuracies. The pos, neg, neutral (and K label) copies of the batch run
as one stacked batch, so a dropout model draws each copy's unit masks independently, while
DropConnect (``norm_mlp(dropout="dropconnect")``) draws one weight mask per layer and step, shared by
all copies (``label_w`` is not dropped).

Labels are read as classes by :func:`fa_jax.rules.layered.classes` (integer classes, or ``y > 0``
for one logit); real-valued labels shaped like the logits (regression targets) are a one-line
error when the objective is first traced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from fa_jax import checks
from fa_jax.errors import InputError
from fa_jax.models import init as inits
from fa_jax.rules.core import Aux, Family, Rule, linear, register_factory
from fa_jax.rules.layered import Shifted, classes, forward

if TYPE_CHECKING:
    from collections.abc import Callable

    from fa_jax.models.contract import Model
    from fa_jax.rules.rule import Batch, Objective, Predict

LABELS = ("concat", "overlay")
NEGS = ("label",)
PREDICTS = ("goodness", "readout")
EPS = 1e-8  # in the unit-RMS normalization between layers
LABEL_KEY = "label_w"  # params[0][LABEL_KEY]: the label's weights (K, h_1) with label="concat"


def n_classes(model: Model) -> int:
    """K: the model's outputs, 2 for one logit (a binary task)."""
    return max(model.n_out, 2)


def wrong_labels(key: jax.Array, c: jax.Array, k: int) -> jax.Array:
    """The negative data's labels (B,): ``(c + randint(1, k)) % k``, never ``c``."""
    return (c + jax.random.randint(key, c.shape, 1, k)) % k


def unit_rms(h: jax.Array, eps: float = EPS) -> jax.Array:
    """``h / sqrt(mean_j h_j^2 + eps)`` over the last axis: the length normalization at unit RMS."""
    return h / jnp.sqrt(jnp.mean(h * h, -1, keepdims=True) + eps)


def goodness(h: jax.Array) -> jax.Array:
    """``mean_j h_j^2`` over the last axis (units)."""
    return jnp.mean(h * h, -1)


def layer_loss(g_pos: jax.Array, g_neg: jax.Array, theta: float) -> jax.Array:
    """``mean_b [softplus(theta - G_pos) + softplus(G_neg - theta)]``; g_pos, g_neg (B,)."""
    return jnp.mean(jax.nn.softplus(theta - g_pos) + jax.nn.softplus(g_neg - theta))


def scored_layers(n_hidden: int) -> range:
    """The hidden layers whose goodness the prediction sums: all but the first, or the one there is."""
    return range(1 if n_hidden > 1 else 0, n_hidden)


def label_weights(p: dict) -> jax.Array:
    """The first layer's ``label_w`` (K, h_1); a one-line InputError for params drawn without it."""
    if LABEL_KEY not in p:
        raise InputError(f"rule 'ff' (label=concat) reads the label's weights at params[0][{LABEL_KEY!r}], which "
                         f"these params lack (keys: {', '.join(sorted(p))}): add them with the rule's init_params "
                         f"(fj.init_state does)")
    return p[LABEL_KEY]


def run(model: Model, params: Any, x: jax.Array, onehots: jax.Array, label: str, *, key: jax.Array | None = None,
        train: bool = True) -> tuple[jax.Array, list[jax.Array]]:
    """One stacked pass with G label groups: ``(readout logits (G, B, n_out), [h_l (G, B, n_l)])``.

    x: (B, n_in); onehots: (G, B, K) the labels each group's copy of x carries (module doc). The
    model's own apply runs on the G*B rows (:func:`fa_jax.rules.layered.forward`; a stochastic model
    draws its dropout masks from ``key``).
    """
    g, b, k = onehots.shape
    oh = onehots.reshape(g * b, k).astype(x.dtype)
    xs = jnp.tile(x, (g, 1))
    if label == "overlay":
        xs = xs.at[:, :k].set(oh)

    def wire(layers, ps, h):
        hs = []
        for i, (layer, p) in enumerate(zip(layers[:-1], ps[:-1])):
            if i == 0:
                op = Shifted(oh @ label_weights(p)) if label == "concat" else linear
            else:
                h, op = jax.lax.stop_gradient(unit_rms(h)), linear
            h = layer(p, h, op)
            hs.append(h)
        return layers[-1](ps[-1], jax.lax.stop_gradient(unit_rms(h)), linear), hs

    y, _, hs = forward(model, params, xs, wire, key=key, train=train)
    return y.reshape(g, b, -1), [h.reshape(g, b, -1) for h in hs]


def goodness_logits(hs: list[jax.Array], n_out: int) -> jax.Array:
    """The goodness prediction's logits (B, n_out) from the K label groups' activations ``hs``
    ([h_l (K, B, n_l)]): the summed goodness per class, or ``G(1) - G(0)`` for one logit."""
    total = sum(goodness(hs[i]) for i in scored_layers(len(hs))).T  # (B, K)
    return total[:, 1:] - total[:, :1] if n_out == 1 else total


def _label_groups(k: int, b: int, dtype) -> jax.Array:
    """(K, B, K): group c carries label c."""
    return jnp.broadcast_to(jnp.eye(k, dtype=dtype)[:, None, :], (k, b, k))


def ff_objective(theta: float, label: str) -> Objective:
    """The objective (module doc): ``(sum_l loss_l + readout loss, Aux)``."""

    def objective(model: Model, params: Any, batch: Batch, feedback: Any, key: jax.Array) -> tuple[jax.Array, Aux]:
        del feedback
        x, k, dtype = batch.x, n_classes(model), batch.x.dtype
        c = classes(batch.y, model.n_out, 1, "ff")
        neg = wrong_labels(jax.random.fold_in(key, 0), c, k)
        b = c.shape[0]
        neutral = jnp.full((b, k), 1 / k, dtype)
        onehots = jnp.stack([jax.nn.one_hot(c, k, dtype=dtype), jax.nn.one_hot(neg, k, dtype=dtype), neutral])
        y, hs = run(model, params, x, onehots, label, key=jax.random.fold_in(key, 1))
        g_pos, g_neg = [goodness(h[0]) for h in hs], [goodness(h[1]) for h in hs]
        ff = sum(layer_loss(p, n, theta) for p, n in zip(g_pos, g_neg))
        readout = batch.loss(y[2], batch.y)
        metrics = {"ff_loss": ff, "readout_loss": readout,
                   "goodness_pos": sum(g.mean() for g in g_pos) / len(hs),
                   "goodness_neg": sum(g.mean() for g in g_neg) / len(hs)}
        return ff + readout, Aux(jax.lax.stop_gradient(y[2]), None, metrics)

    return objective


def ff_predict(label: str, predict: str) -> Predict:
    """The prediction (module doc): goodness logits or the readout's (B, n_out), in eval mode."""

    def infer(model: Model, params: Any, x: jax.Array, feedback: Any) -> jax.Array:
        del feedback
        k, b = n_classes(model), x.shape[0]
        if predict == "readout":
            y, _ = run(model, params, x, jnp.full((1, b, k), 1 / k, x.dtype), label, train=False)
            return y[0]
        _, hs = run(model, params, x, _label_groups(k, b, x.dtype), label, train=False)
        return goodness_logits(hs, model.n_out)

    return infer


def init_label_weights(key: jax.Array, model: Model, params: Any) -> Any:
    """``params`` with ``params[0]["label_w"]`` (K, h_1): rows n_in.. of the model's initializer
    drawn for a (n_in + K, h_1) kernel (module doc)."""
    w = params[0]["w"]
    n_in, h1 = w.shape
    draw = inits.get(getattr(model, "init_name", "he_uniform"))(key, (n_in + n_classes(model), h1), w.dtype)
    return [{**params[0], LABEL_KEY: draw[n_in:]}, *params[1:]]


def check_ff_model(label: str) -> Callable[[Model], None]:
    """``check_model``: a one-line InputError unless ``model`` is an MLP ff runs (module doc)."""

    def check(model: Model) -> None:
        from fa_jax.models.mlp import MLP  # models import the rules

        head = "rule 'ff'"
        if not isinstance(model, MLP):
            raise InputError(f"{head} runs on fj.mlp and fj.norm_mlp(norm='none') (dense layers whose goodness it "
                             f"trains layer by layer); got {type(model).__name__}")
        norm = getattr(model, "norm", "none")
        if norm != "none":
            raise InputError(f"{head}: norm={norm!r} rescales each hidden layer's pre-activation, which sets the "
                             f"goodness ff trains; use fj.mlp or fj.norm_mlp(norm='none')")
        if len(model.sizes) < 3:
            raise InputError(f"{head} needs at least one hidden layer (its goodness is the objective); got sizes "
                             f"{list(model.sizes)}")
        k = n_classes(model)
        if label == "overlay" and model.n_in < k:
            raise InputError(f"rule 'ff(label=overlay)' writes the {k}-class one-hot into the first {k} input "
                             f"features, but the model has {model.n_in}; use label=concat")

    return check


def ff(theta: float = 2.0, neg: str = "label", label: str = "concat", predict: str = "goodness") -> Rule:
    """The Forward-Forward :class:`fa_jax.Rule`: threshold ``theta`` > 0 on the mean squared activity,
    negative data ``neg`` (:data:`NEGS`), label input ``label`` (:data:`LABELS`), prediction
    ``predict`` (:data:`PREDICTS`); module doc."""
    checks.positive_number("ff: theta", theta)
    checks.choice("ff option neg", neg, NEGS, " (the only negative data implemented: the input with a wrong label)")
    checks.choice("ff option label", label, LABELS)
    checks.choice("ff option predict", predict, PREDICTS)
    doc = (f"Forward-Forward: each hidden layer's mean h^2 above theta={theta:g} for true labels, below for "
           f"wrong ones; {label} label, {predict} prediction (Hinton 2022)")
    return Rule("ff", doc=doc, family=Family.LOCAL, objective=ff_objective(float(theta), label),
                predict=ff_predict(label, predict), check_model=check_ff_model(label),
                init_params=init_label_weights if label == "concat" else None)


register_factory("ff", ff)
