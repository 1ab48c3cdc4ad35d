"""Shared checks: a call fails with a one-line error message that names what was wrong; a
command-line entry point exits with code 2 and exactly one line on stderr."""

import pytest


def one_line_error(fn, match, exc=ValueError):
    """Call ``fn``; assert it raises ``exc`` with a one-line message containing ``match``; return the message."""
    with pytest.raises(exc) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg and match in msg, msg
    return msg


def one_line_exit(capsys, main, argv):
    """Run ``main(argv)``; assert exit code 2 and one line on stderr; return that line."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err
