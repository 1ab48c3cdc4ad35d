"""Hidden representations: a layer's activations on test inputs, mapped to 2-D (t-SNE or PCA).

``representation_maps(model, results, task, layer=)`` gives {(rule, stage): (N, 2)} for the
first seed of every rule, before training (its initial params) and after (its final params),
ready for :func:`fa_jax.runs.plots.embedding` and storable as ``embedding.npz`` in a run directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from numpy.typing import ArrayLike

from fa_jax import checks
from fa_jax.models import contract
from fa_jax.rules import core as rules_lib
from fa_jax.training.state import PURPOSE_INIT

if TYPE_CHECKING:
    from fa_jax.data.task import Task
    from fa_jax.training.sweep_result import SweepResult

Maps = dict[tuple[str, str], np.ndarray]  # {(rule, "before"|"after"): (N, 2)}

METHODS = ("pca", "tsne")


def hidden_activations(model: contract.LayeredModel, params: Any, x: jax.Array) -> list[jax.Array]:
    """The hidden activations [h_1, ..., h_H] of ``model`` at ``params``; each (N, h_l).

    The forward pass is the same for every rule, so this is the BP forward pass.
    """
    hs = []

    def record(layer):
        def f(p, h, lin):
            out = layer(p, h, lin)
            hs.append(out)
            return out
        return f

    layers = contract.layers(model, "the hidden representations")
    rules_lib.bp([record(l) for l in layers[:-1]] + layers[-1:], params, x, None)
    return hs


def embed_2d(acts: jax.Array | np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Map (N, d) activations to (N, 2): PCA (fast) or t-SNE (``sklearn.manifold.TSNE``)."""
    from sklearn.decomposition import PCA  # noqa: PLC0415  (loaded on first use)
    from sklearn.manifold import TSNE  # noqa: PLC0415  (loaded on first use)
    check_method(method)
    acts = np.asarray(acts, np.float64).reshape(len(acts), -1)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(acts)
    perplexity = min(30.0, (len(acts) - 1) / 3)
    return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(acts)


def check_method(method: str) -> None:
    """``method`` must be one of :data:`METHODS`."""
    checks.choice("embedding method", method, METHODS)


def check_layer(model: contract.LayeredModel, layer: int) -> None:
    """``layer`` must be 1..H (the hidden layers of ``model``)."""
    n = len(contract.hidden_shapes(model, "the hidden representations"))
    checks.integer("embedding layer", layer, 1, n, what=f"an int in 1..{n} (hidden layers)")


def representation_maps(model: contract.LayeredModel, results: Mapping[str, SweepResult], task: Task, layer: int = 1,
                        method: str = "pca", max_points: int = 1000) -> tuple[Maps, np.ndarray]:
    """{(rule, "before"|"after"): (N, 2)} for hidden ``layer`` (1-based) of seed ``results[r].seeds[0]``.

    "before" uses that seed's initial params (re-drawn from its key), "after" its final params.

    Args:
        model: the layered model the results were trained with.
        results: {rule: SweepResult}.
        task: a :class:`fa_jax.data.Task`; its first ``max_points`` test inputs are mapped.
        layer: the hidden layer, 1..H (default 1).
        method: ``"pca"`` (default) or ``"tsne"`` (:data:`METHODS`).
        max_points: at most this many test inputs, N (default 1000).

    Returns:
        ``(maps, labels)`` with labels (N,) from ``task.y_test``.
    """
    check_layer(model, layer)
    check_method(method)
    x = task.x_test[:max_points]
    maps = {}
    for rule, res in results.items():
        seed = res.seeds[0]
        before = model.init(jax.random.fold_in(jax.random.key(seed), PURPOSE_INIT))
        after = jax.tree.map(lambda a: a[0], res.state.params)
        for stage, params in (("before", before), ("after", after)):
            maps[(rule, stage)] = embed_2d(hidden_activations(model, params, x)[layer - 1], method, seed)
    return maps, np.asarray(task.y_test[:max_points])


def save_maps(path: str | PathLike[str], maps: Maps, labels: ArrayLike, layer: int, method: str) -> None:
    """Store maps as ``embedding.npz`` (keys ``rule/stage``, plus labels, layer, method).

    Args:
        path: the ``.npz`` file to write.
        maps, labels: as returned by :func:`representation_maps`.
        layer, method: the hidden layer and embedding method they were made with.
    """
    np.savez(path, labels=labels, layer=layer, method=method, **{f"{r}/{s}": v for (r, s), v in maps.items()})


def load_maps(path: str | PathLike[str]) -> tuple[Maps, np.ndarray, int, str]:
    """Inverse of :func:`save_maps`: ``(maps, labels, layer, method)``."""
    with np.load(path) as z:
        maps = {tuple(k.split("/")): z[k] for k in z.files if "/" in k}
        return maps, z["labels"], int(z["layer"]), str(z["method"])
