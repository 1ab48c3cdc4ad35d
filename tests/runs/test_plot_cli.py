"""Run directories with diagnostics and representation maps, re-plotted without retraining."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_exit
from repository import ROOT, load_script

import fa_jax as fj
from fa_jax.analysis import representations as reps

def _load(name):
    return load_script(f"experiments/{name}.py", name)


def _py(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)})


def test_hidden_activations_match_numpy(keys):
    model = fj.mlp([3, 5, 4, 2], activation="tanh")
    params = model.init(keys(1)[0])
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    h1 = np.tanh(x @ np.asarray(params[0]["w"]) + np.asarray(params[0]["b"]))
    h2 = np.tanh(h1 @ np.asarray(params[1]["w"]) + np.asarray(params[1]["b"]))
    got = reps.hidden_activations(model, params, jnp.asarray(x))
    np.testing.assert_allclose(got[0], h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], h2, rtol=1e-5, atol=1e-6)


def test_embed_2d_and_bad_input():
    a = np.random.default_rng(0).normal(size=(40, 6))
    pca = reps.embed_2d(a, "pca")
    assert pca.shape == (40, 2)
    np.testing.assert_allclose(np.abs(pca[:, 0]), np.abs((a - a.mean(0)) @ np.linalg.svd(a - a.mean(0))[2][0]),
                               rtol=1e-6, atol=1e-8)
    assert reps.embed_2d(a, "tsne").shape == (40, 2)
    with pytest.raises(ValueError, match="unknown embedding method 'umap'; known: pca, tsne"):
        reps.embed_2d(a, "umap")
    with pytest.raises(ValueError, match=r"embedding layer must be an int in 1..2 \(hidden layers\), got 3"):
        reps.check_layer(fj.mlp([3, 4, 4, 1]), 3)


def test_run_dir_with_diagnostics_is_replotted_from_files(tmp_path):
    task, model = fj.data.digits(), fj.mlp([64, 16, 12, 10])
    _, rows, _ = fj.compare_rules(fj.Study.start(tmp_path, {"task": task.name}), model, task, ["dfa"], seeds=2,
                                             steps=40, eval_every=20, batch_size=32, progress=False,
                                             diagnostics=True, embed_layer=2)
    figs = ["curves.png", "loss.png", "alignment.png", "signal_alignment.png", "weight_alignment.png",
            "grad_norms.png", "weight_norms.png", "embedding.png"]
    for f in figs + ["embedding.npz", "summary.json"]:
        assert (tmp_path / f).is_file(), f
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 * 2 and len(metrics[0]["grad_alignment_deg"]) == 3
    maps, labels, layer, method = reps.load_maps(tmp_path / "embedding.npz")
    assert set(maps) == {("dfa", "before"), ("dfa", "after")} and layer == 2
    assert maps[("dfa", "before")].shape == (len(labels), 2) and method == "pca"
    assert not np.allclose(maps[("dfa", "before")], maps[("dfa", "after")])
    for f in figs:
        (tmp_path / f).unlink()
    p = _py("-m", "fa_jax.plot", str(tmp_path))
    assert p.returncode == 0, p.stderr
    for f in figs:
        assert (tmp_path / f).stat().st_size > 5000, f


def test_plot_cli_bad_directory(tmp_path):
    p = _py("-m", "fa_jax.plot", str(tmp_path / "nope"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "not a run directory (no metrics.jsonl)" in p.stderr


@pytest.mark.parametrize("script,args,match", [
    ("alignment", ["--tasks", "mnist"], "unknown task 'mnist'; known: digits, parity"),
    ("alignment", ["--embed-method", "umap"], "unknown embedding method 'umap'"),
    ("alignment", ["--embed-layer", "5"], "embedding layer must be an int in 1..3"),
    ("feedback_schemes", ["--schemes", "default,foo"], "unknown feedback scheme 'foo'"),
    ("feedback_schemes", ["--rules", "bp"], "rule 'bp' uses no feedback"),
])
def test_experiment_cli_errors(script, args, match, capsys, tmp_path):
    err = one_line_exit(capsys, _load(script).main, [*args, "--out", str(tmp_path)])
    assert match in err
