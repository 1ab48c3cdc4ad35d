"""Command-line plumbing shared by the experiment scripts: one-line errors, exit code 2."""

import argparse
import sys


class ArgParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def csv(type_=str):
    """argparse type for comma-separated lists: ``"bp,fa"`` -> ``["bp", "fa"]``."""

    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"empty list {text!r}")
        try:
            return [type_(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad list {text!r}") from None

    return parse


def fail(prog: str, err: Exception):
    """Print ``prog: error: <err>`` on one line and exit 2 (bad input, before any compilation)."""
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    sys.stderr.write(f"{prog}: error: {msg}\n")
    sys.exit(2)


def apply_defaults(args, parser, values: dict) -> None:
    """Set each of ``values`` on ``args`` unless the user gave that flag another value (e.g. --quick)."""
    for k, v in values.items():
        if getattr(args, k) == parser.get_default(k):
            setattr(args, k, v)


def check_run_sizes(args, names=("seeds", "steps", "batch_size", "eval_every")) -> None:
    """One-line ValueError unless every ``--name`` is >= 1 and ``--steps`` is a multiple of ``--eval-every``."""
    for name in names:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps % args.eval_every:
        raise ValueError(f"--steps {args.steps} is not a multiple of --eval-every {args.eval_every}")
