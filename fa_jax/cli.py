"""Command-line plumbing shared by the experiment scripts: one-line errors, exit code 2."""

import argparse
import json
import sys
from pathlib import Path


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


def add_run_flags(p) -> None:
    """``--checkpoint-every N`` and ``--resume RUN_DIR`` (see :func:`resume_args`)."""
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="save the whole train state every STEPS steps (default: every compiled chunk, "
                        "at most 20 per sweep) and at the end of each sweep; 0: no checkpoints")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the killed run in RUN_DIR from its checkpoints, with the config it "
                        "recorded (the result equals an uninterrupted run bit for bit)")


def resume_args(parser, args, argv=None):
    """With ``--resume RUN_DIR``: re-parse ``argv`` over the options recorded in
    ``RUN_DIR/config.json`` (flags given now still win, and a changed setting is then refused
    by the checkpoints) and set ``--out RUN_DIR``. Without it, ``args`` unchanged."""
    if getattr(args, "resume", None) is None:
        return args
    path = Path(args.resume) / "config.json"
    try:
        recorded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        parser.error(f"--resume {args.resume!r}: cannot read {path} ({getattr(err, 'strerror', None) or err})")
    dests = {a.dest for a in parser._actions} - {"help", "resume", "out"}
    parser.set_defaults(**{k: v for k, v in recorded.items() if k in dests})
    new = parser.parse_args(argv)
    new.out = args.resume
    return new


def checkpoint_kw(args) -> dict:
    """Engine arguments from :func:`add_run_flags`: resume, checkpoint_every, checkpoints."""
    every = args.checkpoint_every
    if every is not None and every < 0:
        raise ValueError(f"--checkpoint-every must be >= 0 (0: no checkpoints), got {every}")
    if every and every % args.eval_every:
        raise ValueError(f"--checkpoint-every {every} is not a multiple of --eval-every {args.eval_every}")
    return {"resume": args.resume is not None, "checkpoint_every": every or None, "checkpoints": every != 0}
