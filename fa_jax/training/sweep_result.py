"""The result of one :func:`fa_jax.sweep`: per-seed metric arrays, the final batched
TrainState, timings, and the JSON rows the run directories store."""

import dataclasses
import math

import numpy as np

from fa_jax.analysis import diagnostics as diagnostics_lib


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
    """

    rule: str
    seeds: list[int]
    eval_steps: np.ndarray
    loss: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    diverged_at: np.ndarray
    state: object  # the final batched fa_jax.TrainState
    compile_s: float
    run_s: float
    diagnostics: dict | None = None
    val_loss: np.ndarray | None = None
    val_acc: np.ndarray | None = None
    best_step: np.ndarray | None = None
    stopped_at: np.ndarray | None = None
    resumed_from: int = 0

    @property
    def best_params(self):
        """Per-seed params at the lowest validation loss (leading axis S); early stopping only."""
        return None if self.state.early is None else self.state.early["params"]

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_at >= 0

    @property
    def final_test_acc(self) -> np.ndarray:
        """(S,) final test accuracy; NaN where the seed diverged (never reported as a number)."""
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
        """One row per (seed, logged step): rule, seed, step, loss, train_acc, test_acc, test_loss;
        with diagnostics also every key of :data:`fa_jax.analysis.diagnostics.KEYS` (a list per layer,
        ``None`` where the rule has no such metric, e.g. BP's weight alignment)."""
        out = []
        for i, seed in enumerate(self.seeds):
            for j, st in enumerate(self.eval_steps):
                vals = {k: float(getattr(self, k)[i, j]) for k in ("loss", "train_acc", "test_acc", "test_loss")}
                vals = {k: (v if math.isfinite(v) else None) for k, v in vals.items()}
                if self.diagnostics is not None:
                    for k in diagnostics_lib.KEYS:
                        d = self.diagnostics.get(k)
                        vals[k] = None if d is None else [
                            (float(v) if math.isfinite(v) else None) for v in d[i, j]]
                out.append({"rule": self.rule, "seed": int(seed), "step": int(st), **vals})
        return out


def early_stopping_fields(metrics, state) -> dict:
    """The :class:`SweepResult` fields of early stopping (validation curves, each seed's best step
    and stopping step) from the metrics (S, E) and the final batched state; ``{}`` without it."""
    if state.early is None:
        return {}
    return {"val_loss": metrics["val_loss"], "val_acc": metrics["val_acc"],
            "best_step": np.asarray(state.early["step"]), "stopped_at": np.asarray(state.early["stopped_at"])}
