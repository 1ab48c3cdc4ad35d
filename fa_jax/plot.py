"""Redraw every figure of a run directory from its files, without retraining.

    python -m fa_jax.plot RUN_DIR

See :func:`fa_jax.runs.redraw.redraw` for the files read and the figures written.
"""

import sys

from fa_jax.runs import cli
from fa_jax.runs.redraw import redraw


def main(argv=None):
    p = cli.ArgParser(prog="python -m fa_jax.plot", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="a run directory (with metrics.jsonl)")
    args = p.parse_args(argv)
    try:
        written = redraw(args.run_dir)
    except ValueError as err:
        cli.fail("fa_jax.plot", err)
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
