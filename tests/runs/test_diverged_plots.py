"""Figures and tables leave diverged seeds out entirely and say how many seeds they show; metric
files written before rows carried ``diverged`` still plot; the main job end to end with some seeds
diverging: null rows after the divergence, and the summary equal to the plotted means."""

import json

import numpy as np
import pytest
from repository import load_script

from fa_jax.runs import plots, tables

STEPS = (10, 20, 30, 40)


def _rows(rule, seed, acc, diverged_from=None, loss=0.5):
    """Metric rows of one seed: test_acc ``acc`` at every step; from step ``diverged_from`` on
    (None: never) null and diverged; ``diverged_from=False`` writes rows without the key (old files)."""
    out = []
    for st in STEPS:
        div = diverged_from not in (None, False) and st >= diverged_from
        r = {"rule": rule, "seed": seed, "step": st, "test_acc": None if div else acc, "loss": None if div else loss,
             "grad_alignment_deg": None if div else [acc * 100, 45.0]}
        if diverged_from is not False:
            r["diverged"] = div
        out.append(r)
    return out


ROWS = (_rows("bp", 0, 0.9) + _rows("bp", 1, 0.7) + _rows("bp", 2, 0.99, diverged_from=30) + _rows("bp", 3, 0.8)
        + _rows("fa", 0, 0.6, diverged_from=20) + _rows("fa", 1, 0.6, diverged_from=40)
        + _rows("dfa", 0, 0.5, diverged_from=False) + _rows("dfa", 1, 0.7, diverged_from=False))


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw, kept open instead of written."""
    drawn = []

    def keep(fig, path, title=None):
        drawn.append(fig)
        return path

    monkeypatch.setattr(plots, "save", keep)
    yield drawn
    import matplotlib.pyplot as plt
    for fig in drawn:
        plt.close(fig)


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _lines(ax):
    """{label: y data} of the drawn (non-empty) lines of ``ax``."""
    return {ln.get_label(): np.asarray(ln.get_ydata(), float) for ln in ax.get_lines() if len(ln.get_xdata())}


def test_curves_leave_diverged_seeds_out_and_count_them(figures, tmp_path):
    plots.curves(ROWS, tmp_path / "c.png")
    (ax,) = figures[0].axes
    assert _legend(ax) == ["bp (3 of 4 seeds; 1 diverged)", "fa: all 2 seeds diverged", "dfa (2 seeds)"]
    lines = _lines(ax)
    assert set(lines) == {"bp (3 of 4 seeds; 1 diverged)", "dfa (2 seeds)"}  # no fa line at all
    np.testing.assert_allclose(lines["bp (3 of 4 seeds; 1 diverged)"], [0.8] * 4)  # seed 2 left out before 30 too
    np.testing.assert_allclose(lines["dfa (2 seeds)"], [0.6] * 4)  # an old file: every seed shown


def test_curves_without_divergence_keep_the_plain_count(figures, tmp_path):
    plots.curves(_rows("bp", 0, 0.9) + _rows("bp", 1, 0.7), tmp_path / "c.png")
    assert _legend(figures[0].axes[0]) == ["bp (2 seeds)"]


def test_panels_say_where_seeds_diverged(figures, tmp_path):
    rows = [dict(r, model="a") for r in ROWS] + [dict(r, model="b") for r in _rows("bp", 0, 0.9) + _rows("fa", 0, 0.4)]
    plots.curves(rows, tmp_path / "c.png", panel="model")
    a, b = figures[0].axes[:2]
    assert _legend(a) == ["bp (3 of 4 seeds; 1 diverged)", "fa: all 2 seeds diverged", "dfa"]
    assert b.get_legend() is None  # nothing diverged there: the first panel's legend serves
    assert {ln.get_label(): ln.get_color() for ln in b.get_lines()} == {"bp": "C0", "fa": "C1"}  # colours as in a


def test_layer_curves_leave_diverged_seeds_out(figures, tmp_path):
    plots.layer_curves(ROWS, tmp_path / "a.png")
    ax = figures[0].axes[0]
    assert _legend(ax) == ["bp (3 of 4 seeds; 1 diverged)", "fa: all 2 seeds diverged", "dfa"]
    np.testing.assert_allclose(_lines(ax)["bp (3 of 4 seeds; 1 diverged)"], [80.0] * 4)
    assert tables.final_layer_stats(ROWS)["bp"][2] == 3  # seeds in the layer table: the healthy ones


def test_summary_counts_diverged_seeds_and_averages_the_others():
    rows = [{"rule": "bp", "test_accuracy": a, "diverged": a is None} for a in (0.9, None, 0.7)]
    (s,) = tables.summarize(rows)
    assert s["seeds"] == 3 and s["diverged"] == 1 and s["mean_acc"] == pytest.approx(0.8)
    assert "| bp | 0.800 ± 0.100 | 0.700 | 1/3 |" in tables.table([s])


def test_main_job_with_diverging_seeds_end_to_end(figures, tmp_path):
    """SGD lr 100 on the --quick parity: bp seeds 0 and 3 of 4 diverge (at steps 8 and 18)."""
    out = tmp_path / "run"
    assert load_script("experiments/parity.py", "parity_diverging").main(
        ["--quick", "--rules", "bp", "--seeds", "4", "--steps", "100", "--optimizer", "sgd", "--lr", "100",
         "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    results = {r["seed"]: r for r in summary["results"]}
    diverged = {s: r["diverged_step"] for s, r in results.items() if r["diverged"]}
    assert 0 < len(diverged) < 4, summary
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for r in metrics:
        assert r["diverged"] == (r["seed"] in diverged and r["step"] > diverged[r["seed"]]), r
        if r["diverged"]:
            assert r["loss"] is r["test_acc"] is r["train_acc"] is r["test_loss"] is None, r
    assert any(r["diverged"] for r in metrics)
    plots.redraw(out)  # from the files, as python -m fa_jax.plot does
    (by_rule,) = summary["by_rule"]
    assert by_rule["diverged"] == len(diverged)
    label = f"bp ({4 - len(diverged)} of 4 seeds; {len(diverged)} diverged)"
    for fig in (figures[0], figures[2]):  # curves.png written by the job, then redrawn
        (ax,) = fig.axes
        assert _legend(ax) == [label]
        assert _lines(ax)[label][-1] == pytest.approx(by_rule["mean_acc"], rel=1e-12)
