"""The harness every lecture experiment (``experiments/lectures/*.py``) shares.

``run_lecture(prog, parser, quick, check, body, argv)`` parses the arguments (the parser from
:func:`parser` has ``--out``, ``--quick`` and the run flags), checks them through ``check(args)``
(a one-line ValueError, exit code 2, before anything compiles), opens the run directory as a
:class:`fa_jax.runs.study.Study` (``config.json`` first), runs ``body(args, study) ->
(summary, verdict)`` (its sweeps go through ``study.sweep``, so they are checkpointed and
resumable), writes ``summary.json`` (with the one-line ``verdict``) last and prints the verdict.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from fa_jax.errors import InputError
from fa_jax.runs import cli
from fa_jax.runs.study import Study


def parser(prog: str, doc: str, quick: dict) -> cli.ArgParser:
    """An ``fa_jax.runs.cli.ArgParser`` with ``--out``, ``--quick`` (tiny sizes for the tests) and the run flags."""
    p = cli.ArgParser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"tiny sizes for a smoke test: {quick}")
    cli.add_run_flags(p, prog[:-3])
    return p


def run_lecture(prog: str, p: argparse.ArgumentParser, quick: dict, check: Callable[[argparse.Namespace], object],
                body: Callable[[argparse.Namespace, Study], tuple[dict, str]],
                argv: Sequence[str] | None = None) -> int:
    """Parse, validate (``check(args)`` raises ValueError), run ``body`` and write the run directory.

    A failure after the checks (a full disk, a sweep too large for memory) is one line too
    (:class:`fa_jax.runs.cli.guarded`).

    Args:
        prog: the script's file name (``"<name>.py"``); without ``.py`` it names the run.
        p: the parser from :func:`parser`.
        quick: the defaults ``--quick`` applies (tiny sizes); values given on the command line
            or in a config still win.
        check: ``check(args)``, raising a one-line ValueError for bad arguments (exit code 2).
        body: ``body(args, study) -> (summary, verdict)``; summary a dict, verdict one line.
        argv: the command-line arguments (default None: ``sys.argv[1:]``).

    Returns:
        0, the exit code, once ``summary.json`` is written.
    """
    with cli.guarded(prog):
        args = p.parse_args(argv)
        if args.quick:  # p's defaults are the script's own again after parsing: config values beat --quick
            cli.apply_defaults(args, quick)
        check(args)
        study = Study.from_args(args, prog[:-3])
        summary, verdict = body(args, study)
        study.finish(lambda s: {**summary, "verdict": verdict})
        print(verdict)
        print(study.time_report())
        print(f"wrote {study.out}/config.json, metrics.jsonl, summary.json and the plot")
        return 0


def positive(args: argparse.Namespace, *names: str) -> None:
    """One-line ValueError unless every ``args.<name>`` is > 0 and finite."""
    for n in names:
        v = getattr(args, n)
        if not v > 0:
            raise InputError(f"--{n.replace('_', '-')} must be > 0, got {v}")
        if v == float("inf"):
            raise InputError(f"--{n.replace('_', '-')} must be finite, got {v}")
