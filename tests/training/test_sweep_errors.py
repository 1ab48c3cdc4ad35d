"""fj.sweep refuses, with one line and before anything compiles: being traced (called inside
jit or vmap), a checkpoint path that is not a writable directory, optimizer options that are
not a dict of hashable values, learning rates that are not what it accepts."""

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.training import checkpoint as checkpoint_lib

MODEL = fj.mlp([4, 8, 1])
TASK = fj.data.from_arrays(np.ones((8, 4)), np.ones(8), np.ones((8, 4)), np.ones(8))
KW = dict(seeds=2, steps=2, eval_every=1, batch_size=8, progress=False)
TRACED = "sweep is a host-level driver that compiles and vmaps over seeds by itself, so it cannot run inside jax.jit"


def _sweep(**kw):
    return fj.sweep(MODEL, TASK, **{**KW, **kw})


@pytest.fixture
def no_compiling(monkeypatch):
    """Any compilation fails the test: the errors must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("compiled before the error")
    monkeypatch.setattr(jax.stages.Lowered, "compile", refuse)
    monkeypatch.setattr(jax, "jit", refuse)


@pytest.mark.parametrize("transform", ["jit", "vmap"])
def test_traced_learning_rate(transform):
    wrap = jax.jit if transform == "jit" else jax.vmap
    msg = one_line_error(lambda: wrap(lambda lr: _sweep(lr=lr))(jnp.array([0.1, 0.2])), TRACED)
    assert "(lr is traced)" in msg and "lr=[lr_0, ..., lr_S-1]" in msg and "one float per seed" in msg, msg


@pytest.mark.parametrize("name,call", [
    ("seeds", lambda: jax.vmap(lambda s: _sweep(seeds=[s]))(jnp.arange(2))),
    ("steps", lambda: jax.jit(lambda n: _sweep(steps=n))(4)),
    ("task", lambda: jax.jit(lambda t: fj.sweep(MODEL, t, **KW))(TASK)),
    ("optimizer_hyper", lambda: jax.vmap(lambda b: _sweep(optimizer_hyper={"b1": b}))(jnp.array([0.8, 0.9]))),
])
def test_any_traced_argument(name, call):
    msg = one_line_error(call, TRACED)
    assert f"({name} is traced)" in msg, msg


def test_checkpoint_is_a_file(tmp_path, no_compiling):
    f = tmp_path / "ckpt.txt"
    f.write_text("")
    one_line_error(lambda: _sweep(checkpoint=str(f)), f"checkpoint={str(f)!r} is a file; it must be a directory")
    one_line_error(lambda: _sweep(checkpoint=f / "sub"), f"checkpoint={str(f / 'sub')!r} lies inside the file")
    assert f.read_text() == "" and not (tmp_path / "ckpt.txt.orbax-checkpoint-tmp").exists()


@pytest.mark.parametrize("bad", ["", "  ", 5, True, ["a"]])
def test_checkpoint_not_a_path(bad, no_compiling):
    one_line_error(lambda: _sweep(checkpoint=bad),
                   f"checkpoint must be a directory path (str or os.PathLike) or None, got {bad!r}")


def test_checkpoint_not_writable(tmp_path, monkeypatch, no_compiling):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: let os.access answer as the mode bits do
        real = os.access
        monkeypatch.setattr(checkpoint_lib.os, "access", lambda p, m: Path(p) != d and real(p, m))
    one_line_error(lambda: _sweep(checkpoint=d), f"checkpoint directory {str(d)!r} is not writable")
    one_line_error(lambda: _sweep(checkpoint=d / "new" / "run"), f"checkpoint directory {str(d / 'new' / 'run')!r} "
                                                                  f"cannot be created: {str(d)!r} is not writable")
    one_line_error(lambda: checkpoint_lib.Checkpointer(d, {}), "is not writable")
    d.chmod(0o755)


@pytest.mark.parametrize("hyper,match", [
    ([("b1", 0.9)], "optimizer_hyper must be a dict {name: value} or None, got [('b1', 0.9)]"),
    ({1: 0.1}, "optimizer_hyper keys must be str, got 1"),
    ({"learning_rate": 0.1}, "optimizer_hyper must not hold learning_rate: pass lr= to fj.sweep"),
    ({"lr": 0.1}, "adam: unknown hyperparameter 'lr'; known: b1, b2"),
    ({"b1": np.array([0.9, 0.8])}, "adam: b1=<float64 array of shape (2,)> must be a number in [0, 1)"),
    ({"b1": 1.5}, "adam: b1=1.5 must be in [0, 1)"),
    ({"nesterov": "yes"}, "adam: nesterov='yes' must be True or False"),
])
def test_bad_optimizer_hyper(hyper, match, no_compiling):
    one_line_error(lambda: _sweep(optimizer_hyper=hyper), match)


def test_unhashable_optimizer_hyper(no_compiling):
    one_line_error(lambda: _sweep(optimizer="adamw", optimizer_hyper={"mask": {"w": True}}),
                   "optimizer_hyper['mask']={'w': True} must be hashable")


@pytest.mark.parametrize("lr,match", [
    ("fast", "lr must be a positive number, an optax schedule or a list of one per seed, got 'fast'"),
    (True, "lr must be a positive number, an optax schedule or a list of one per seed, got True"),
    (-1, "learning rate must be positive and finite, got -1"),
    (["a", "b"], "lr must be a positive number, an optax schedule or a list of one per seed, got ['a', 'b']"),
    ([0.1, -0.2], "lr[1] must be a positive finite number, got -0.2"),
    ([[0.1], [0.2]], "lr must be a positive number, an optax schedule or a list of one per seed, got [[0.1], [0.2]]"),
    ([0.1, 0.2, 0.3], "got 3 learning rates for 2 seeds"),
    ({"a": 0.1}, "got {'a': 0.1}"),
    ([0.1, [0.2]], "lr must be a positive number, an optax schedule or a list of one per seed, got [0.1, [0.2]]"),
    ([True, True], "lr must be a positive number, an optax schedule or a list of one per seed, got [True, True]"),
    (np.array(True), "lr must be a positive number, an optax schedule or a list of one per seed, got array(True)"),
    (1e-50, "lr=1e-50 is 0.0 in float32; it must be a positive finite number"),
])
def test_bad_learning_rates(lr, match, no_compiling):
    one_line_error(lambda: _sweep(lr=lr), match)


@pytest.mark.parametrize("lr", [np.array(0.1), jnp.array(0.1), np.float32(0.1), (0.1, 0.1), jnp.array([0.1, 0.1])])
def test_scalar_and_per_seed_learning_rates(lr):
    res = _sweep(lr=lr)
    np.testing.assert_allclose(res.state.opt_state.hyperparams["learning_rate"], [0.1, 0.1])
