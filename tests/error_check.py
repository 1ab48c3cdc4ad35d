"""Shared check: a call fails with a one-line error message that names what was wrong."""

import pytest


def one_line_error(fn, match, exc=ValueError):
    """Call ``fn``; assert it raises ``exc`` with a one-line message containing ``match``; return the message."""
    with pytest.raises(exc) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg and match in msg, msg
    return msg
