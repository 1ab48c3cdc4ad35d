"""The one exception fa_jax raises for input it refuses: :class:`InputError`.

Every check of a setting, an argument, a config or a run directory raises it with a one-line
message naming the bad value and what is accepted. It is a ``ValueError``, so callers that
catch ``ValueError`` keep working. The scripts print it as one line and exit 2
(:class:`fa_jax.runs.cli.guarded`); any other exception, a ``ValueError`` from JAX or from the
user's own model included, keeps its traceback, so a bug shows where it is. (``fj.from_flax`` reports
a module that cannot run on inputs of the given shape as an InputError, chaining the module's own
error, which ``FA_JAX_TRACEBACK=1`` shows.)
"""


class InputError(ValueError):
    """Bad input to fa_jax: a setting, argument, file or model fa_jax refuses (one-line message)."""
