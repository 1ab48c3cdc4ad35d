"""A script's ``cli.guarded``: fa_jax's own InputError is one line and exit 2; any other exception, a
ValueError from JAX or from the user's own model included, keeps its traceback."""

import pytest

import fa_jax as fj
from fa_jax.runs import cli


@cli.guarded("job.py")
def _raise(err):
    raise err


def test_an_input_error_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        _raise(fj.InputError("--width must be >= 1, got 0\nsecond line"))
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "job.py: error: --width must be >= 1, got 0\n"


def test_a_users_value_error_keeps_its_traceback():
    with pytest.raises(ValueError, match="my model's own bug") as info:
        _raise(ValueError("my model's own bug"))
    assert not isinstance(info.value, fj.InputError)


def test_a_jax_error_inside_the_library_keeps_its_traceback():
    class Broken:  # a user model whose apply has a shape bug
        n_in, n_out = 4, 1

        def init(self, key):
            return fj.mlp([4, 1]).init(key)

        def apply(self, params, x, *, rule="bp", feedback=None):
            return x @ params[0]["w"].T  # (batch, 4) @ (1, 4): a shape error in the user's code

    @cli.guarded("job.py")
    def main():
        fj.sweep(Broken(), fj.data.parity(4, 2), seeds=1, steps=10, eval_every=10, progress=False)

    with pytest.raises(TypeError, match="dot_general requires contracting dimensions to have the same shape"):
        main()


def test_fa_jax_checks_raise_input_error():
    for bad in (lambda: fj.mlp([4, 0, 1]), lambda: fj.rules.get("nope"), lambda: fj.optimizer("adamm", 1e-3),
                lambda: fj.sweep(fj.mlp([4, 1]), fj.data.parity(4, 2), steps=150, eval_every=100)):
        with pytest.raises(fj.InputError):
            bad()
    assert issubclass(fj.InputError, ValueError)
