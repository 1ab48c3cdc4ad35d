"""The result of one :func:`fa_jax.sweep`: per-seed metric arrays, the final batched
TrainState, timings, and the JSON rows the run directories store."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fa_jax.analysis import diagnostics as diagnostics_lib

if TYPE_CHECKING:
    from fa_jax.training.state import TrainState


@dataclasses.dataclass
class SweepResult:
    """Per-seed results of one :func:`sweep`; arrays are numpy, seeds on axis 0.

    eval_steps: (E,) steps at which metrics were taken. loss, train_acc, test_loss,
    test_acc: (S, E). diverged_at: (S,) first non-finite step or -1. state: the final
    batched TrainState (leading axis S). diagnostics: ``None`` unless the sweep ran with
    ``diagnostics=True``; then {key: (S, E, n_layers)} for the keys of
    :mod:`fa_jax.analysis.diagnostics` that the rule has. With early stopping: val_loss, val_acc
    (S, E); best_step (S,) the step of the kept params; stopped_at (S,) the step where
    patience ran out or -1; ``best_params``. resumed_from: the checkpointed step this
    sweep continued from (0 for a fresh run). ``compile_s`` and ``run_s`` include the seconds the
    checkpointed part took (saved with the checkpoint), so a resumed run reports its whole cost.
    ``init_compile_s``: the seconds compiling the parameter and feedback draws took (apart
    from ``compile_s``, the training program's; ~0 when it was compiled before). rule_metrics: the
    rule's own measures ({name: (S, E)}, each averaged over the steps before an evaluation; an
    objective's ``Aux.metrics``, e.g. a final energy), or None for a rule without them.

    A seed whose loss became non-finite is frozen from its step ``diverged_at`` on
    (:func:`fa_jax.training.step.make_train_step`). The metric arrays keep what was measured:
    after the divergence that is the frozen params' loss and accuracy, not training progress.
    :attr:`diverged_mask` marks those evaluations; :meth:`rows`, :meth:`metric_rows` and
    :attr:`final_test_acc` leave them out (``None`` / NaN).
    """

    rule: str
    seeds: list[int]
    eval_steps: np.ndarray
    loss: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    diverged_at: np.ndarray
    state: TrainState  # the final batched fa_jax.TrainState
    compile_s: float
    run_s: float
    diagnostics: dict | None = None
    val_loss: np.ndarray | None = None
    val_acc: np.ndarray | None = None
    best_step: np.ndarray | None = None
    stopped_at: np.ndarray | None = None
    resumed_from: int = 0
    init_compile_s: float = 0.0
    rule_metrics: dict | None = None

    @property
    def best_params(self) -> Any:
        """Per-seed params at the lowest validation loss (leading axis S); early stopping only."""
        return None if self.state.early is None else self.state.early["params"]

    @property
    def diverged(self) -> np.ndarray:
        """(S,) bool: the seed's loss became non-finite (at step ``diverged_at``)."""
        return self.diverged_at >= 0

    @property
    def diverged_mask(self) -> np.ndarray:
        """(S, E) bool: the evaluation at ``eval_steps[j]`` came after seed i's divergence.

        The evaluation at step ``t`` follows the steps ``t - eval_every .. t - 1`` (0-based), so it
        is marked when ``t > diverged_at``; e.g. ``np.where(res.diverged_mask, np.nan, res.test_acc)``.
        """
        return self.diverged[:, None] & (self.eval_steps[None, :] > self.diverged_at[:, None])

    @property
    def final_test_acc(self) -> np.ndarray:
        """(S,) final test accuracy; NaN where the seed diverged (``res.diverged``, step
        ``res.diverged_at``), whatever its frozen params score; never reported as a number."""
        return np.where(self.diverged, np.nan, self.test_acc[:, -1])

    def rows(self) -> list[dict]:
        """One summary row per seed (JSON-ready; diverged seeds get ``null`` accuracy/loss)."""
        out = []
        wall = (self.compile_s + self.run_s)
        for i, seed in enumerate(self.seeds):
            div = bool(self.diverged[i])
            out.append({
                "rule": self.rule, "seed": int(seed),
                "test_accuracy": None if div else float(self.test_acc[i, -1]),
                "final_loss": None if div else float(self.loss[i, -1]),
                "steps": int(self.eval_steps[-1]), "diverged": div,
                "diverged_step": int(self.diverged_at[i]) if div else None,
                "wall_s": round(wall, 3),
            })
        return out

    def metric_rows(self) -> list[dict]:
        """One row per (seed, logged step): rule, seed, step, diverged, loss, train_acc, test_acc,
        test_loss; the rule's own metrics (:attr:`rule_metrics`); with diagnostics also every key of :data:`fa_jax.analysis.diagnostics.KEYS` (a
        list per layer, ``None`` where the rule has no such metric, e.g. BP's weight alignment).

        ``diverged`` is :attr:`diverged_mask`: on those rows every metric is ``None``; elsewhere a
        non-finite value is ``None``.
        """
        out = []
        mask = self.diverged_mask
        for i, seed in enumerate(self.seeds):
            for j, st in enumerate(self.eval_steps):
                div = bool(mask[i, j])
                vals = {k: _finite(getattr(self, k)[i, j], div) for k in ("loss", "train_acc", "test_acc", "test_loss")}
                vals.update({k: _finite(v[i, j], div) for k, v in (self.rule_metrics or {}).items()})
                if self.diagnostics is not None:
                    for k in diagnostics_lib.KEYS:
                        d = self.diagnostics.get(k)
                        vals[k] = None if d is None or div else [_finite(v) for v in d[i, j]]
                out.append({"rule": self.rule, "seed": int(seed), "step": int(st), "diverged": div, **vals})
        return out


def _finite(v, diverged=False) -> float | None:
    """``float(v)``, or None where it is not finite or the seed had diverged."""
    v = float(v)
    return None if diverged or not math.isfinite(v) else v


STANDARD = ("loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc", *diagnostics_lib.KEYS)


def rule_metric_fields(metrics: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """``{"rule_metrics": {name: (S, E)}}`` for the metrics a rule's objective added, ``{}`` without any."""
    own = {k: v for k, v in metrics.items() if k not in STANDARD}
    return {"rule_metrics": own} if own else {}


def early_stopping_fields(metrics: Mapping[str, np.ndarray], state: TrainState) -> dict[str, np.ndarray]:
    """The :class:`SweepResult` fields of early stopping (validation curves, each seed's best step
    and stopping step) from the metrics (S, E) and the final batched state; ``{}`` without it."""
    if state.early is None:
        return {}
    return {"val_loss": metrics["val_loss"], "val_acc": metrics["val_acc"],
            "best_step": np.asarray(state.early["step"]), "stopped_at": np.asarray(state.early["stopped_at"])}
