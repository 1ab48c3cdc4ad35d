"""The harness every lecture experiment (``experiments/lectures/*.py``) shares.

``run_lecture(name, parser, body, argv)`` parses the arguments (adds ``--out`` and
``--quick``), checks them through ``body``'s own ``check(args)``, prepares the run
directory, runs ``body(args, out) -> (summary, verdict)`` and writes ``config.json``
first and ``summary.json`` (with the one-line ``verdict``) last, then prints the verdict.
Bad input is a one-line error and exit code 2 (``fa_jax.runs.cli``).
"""

from fa_jax.runs import cli
from fa_jax.runs import rundir
from fa_jax.training.sweep import sweep as fj_sweep


def parser(prog: str, doc: str, quick: dict):
    """An ``fa_jax.runs.cli.ArgParser`` with ``--out`` and ``--quick`` (tiny sizes for the tests)."""
    p = cli.ArgParser(prog=prog, description=doc.splitlines()[0])
    p.add_argument("--out", default=None, help=f"run directory (default runs/{prog[:-3]}-<time>)")
    p.add_argument("--quick", action="store_true", help=f"tiny sizes for a smoke test: {quick}")
    cli.add_run_flags(p)
    return p


def run_lecture(prog: str, p, quick: dict, check, body, argv=None) -> int:
    """Parse, validate (``check(args)`` raises ValueError), run ``body`` and write the run directory;
    a failure after the checks (a full disk, a sweep too large for memory) is one line too
    (:class:`fa_jax.runs.cli.guarded`)."""
    with cli.guarded(prog):
        return _run(prog, p, quick, check, body, argv)


def _run(prog: str, p, quick: dict, check, body, argv=None) -> int:
    args = p.parse_args(argv)
    if args.quick:  # p's defaults are the script's own again after parsing: config values beat --quick
        cli.apply_defaults(args, p, quick)
    try:
        check(args)
        if args.checkpoint_every is not None and args.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0 (0: no checkpoints), got {args.checkpoint_every}")
        if args.keep_checkpoints < 1:
            raise ValueError(f"--keep-checkpoints must be >= 1, got {args.keep_checkpoints}")
        out = rundir.prepare(args.out or rundir.default_dir(prog[:-3]))
        rundir.start(out, args.resume is not None)  # refuses to overwrite a run with checkpoints
    except ValueError as err:
        cli.fail(prog, err)
    if args.resume is None or not (out / "config.json").is_file():
        rundir.write_config(out, {"job": prog[:-3], **vars(args), "out": str(out)})
    args.run_dir = out  # for sweep(): after config.json, which records the options only
    try:
        summary, verdict = body(args, out)
    except OSError as err:  # e.g. a figure on a full disk: name the run directory at least
        raise rundir.named(err, out) from None
    rundir.write_json(out / "summary.json", {**summary, "verdict": verdict})
    print(verdict)
    print(f"wrote {out}/config.json, summary.json and the plot")
    return 0


def sweep(args, name: str, model, task, **kw):
    """:func:`fa_jax.sweep` checkpointed in ``<run dir>/checkpoints/<name>`` (resumed with
    ``--resume``); ``--checkpoint-every`` is rounded down to a multiple of ``eval_every``."""
    every, eval_every = args.checkpoint_every, kw.get("eval_every", 100)
    every = None if not every else max(eval_every, every // eval_every * eval_every)
    ckpt = rundir.checkpointing(args.run_dir, name, every, args.checkpoint_every != 0, args.keep_checkpoints)
    return fj_sweep(model, task, **ckpt, **kw)


def positive(args, *names):
    """One-line ValueError unless every ``args.<name>`` is > 0 and finite."""
    for n in names:
        v = getattr(args, n)
        if not v > 0:
            raise ValueError(f"--{n.replace('_', '-')} must be > 0, got {v}")
        if v == float("inf"):
            raise ValueError(f"--{n.replace('_', '-')} must be finite, got {v}")
