"""Command-line plumbing shared by the experiment scripts: one-line errors (exit code 2) and config files.

Every :class:`ArgParser` accepts ``--config FILE.py`` (or ``FILE.py:ARG``: a Python file whose
``get_config()``, or ``get_config(ARG)``, returns an ``ml_collections.ConfigDict`` of option
values, as in the flax examples) and ``--config.KEY=VALUE`` / ``--config.KEY VALUE`` overrides
(KEY may use - or _). The options become a locked, type-safe ConfigDict
(:class:`fa_jax.runs.configs.Config`), updated by the config file, then by the overrides;
precedence: explicit flag > --config.KEY > config file > preset (``--quick``, ``--preset``:
:func:`apply_defaults`) > parser default. The parser records which options the user set (on the
command line, in a config or, with ``--resume``, in the run's ``config.json``: :func:`given`), so
a typed value equal to the default still beats a preset.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import traceback
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, NoReturn

from fa_jax import interrupt
from fa_jax.errors import InputError
from fa_jax.runs import configs, lock
from fa_jax.runs.configs import apply_config, check_unique, load_config  # noqa: F401  (part of this API)

CONFIG_HELP = ("Python file (FILE.py or FILE.py:ARG) whose get_config() returns an ml_collections.ConfigDict "
               "{option: value} (e.g. experiments/configs/); --config.KEY=VALUE overrides one key; explicit "
               "flags win over both")

_UNSET = object()


class Args(argparse.Namespace):
    """The parsed flags; also knows which options the user set (:func:`given`), outside ``vars()``."""

    __slots__ = ("_given", "_preset")


def given(args: argparse.Namespace) -> set[str]:
    """The option names (dests) set on the command line, by ``--config``/``--config.KEY`` or by
    ``--resume``'s recorded config; TypeError for flags not parsed by :class:`ArgParser`."""
    try:
        return args._given
    except AttributeError:
        raise TypeError("flags parsed by fa_jax.runs.cli.ArgParser are needed to tell given options") from None


class ArgParser(argparse.ArgumentParser):
    """An ArgumentParser with ``--config`` support whose errors are one line on stderr, exit code 2.

    ``options``: {dest: :class:`fa_jax.runs.configs.Option`} of the options its ``add_argument``
    added, the keys a config may set."""

    def __init__(self, *args, **kwargs):
        self.options = {}
        super().__init__(*args, **kwargs)
        self.add_argument("--config", default=None, metavar="FILE.py[:ARG]", help=CONFIG_HELP)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        opt = configs.option(action, kwargs.get("action"))
        # a dest shared by several flags (--preset and --quick = --preset quick): the typed one describes it
        if opt is not None and (action.dest not in self.options or kwargs.get("action") in (None, "store")):
            self.options[action.dest] = opt
        return action

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        """Parse the command line once, then fill each option it left unset from the ConfigDict of
        the defaults updated by --resume RUN_DIR's recorded config, --config FILE, --config.KEY
        (in that order; with --resume, ``out`` is RUN_DIR: see :func:`add_run_flags`). The parser
        itself is left as it was. The result is an :class:`Args` that knows which options were
        given (:func:`given`: the explicit flags and the configured keys)."""
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rest, overrides = split_overrides(argv)
        except ValueError as err:
            self.error(str(err))
        ns = Args() if namespace is None else namespace
        for dest in self.options:
            if not hasattr(ns, dest):
                setattr(ns, dest, _UNSET)  # argparse sets only what the command line gives
        ns, extras = super().parse_known_args(rest, ns)
        explicit = {dest for dest in self.options if getattr(ns, dest) is not _UNSET}
        resume = ns.resume if "resume" in explicit else None
        try:
            config, configured = configs.Config(self), set()
            if resume is not None:
                configured |= config.resume(resume)
            if ns.config is not None:
                configured |= config.update(load_config(ns.config), ns.config)
            for key, text in overrides:
                configured |= config.update({key: text}, f"--config.{key}")
        except ValueError as err:
            self.error(str(err).splitlines()[0])
        for dest, value in config.values().items():
            if dest not in explicit:
                setattr(ns, dest, value)
        if resume is not None:
            ns.out = resume
        if isinstance(ns, Args):
            ns._given, ns._preset = explicit | configured, set()
        return ns, extras


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(argv without the ``--config.KEY[=VALUE]`` tokens, [(KEY, VALUE string), ...])."""
    rest, overrides, i = [], [], 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            rest.extend(argv[i:])
            break
        if tok.startswith("--config."):
            key, eq, text = tok[len("--config."):].partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    raise InputError(f"{tok} needs a value: {tok}=VALUE or {tok} VALUE")
                i, text = i + 1, argv[i + 1]
            if not key:
                raise InputError(f"{tok!r}: name the key, e.g. --config.seeds=4")
            overrides.append((key, text))
        else:
            rest.append(tok)
        i += 1
    return rest, overrides


def csv(type_: Callable[[str], Any] = str, *, unique: bool = True, empty: bool = False) -> Callable[[str], list]:
    """argparse type for comma-separated lists: ``"bp,fa"`` -> ``["bp", "fa"]`` (``parse.item_type =
    type_``). unique: refuse a repeated item (a grid of rules, models or values; default True);
    False for lists whose items may repeat (layer widths). empty: accept ``""`` as ``[]``."""

    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items and not empty:
            raise argparse.ArgumentTypeError(f"empty list {text!r}")
        try:
            values = [type_(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad list {text!r}") from None
        return check_unique(values, text) if unique else values

    parse.item_type, parse.unique = type_, unique
    return parse


def rule(text: str) -> str:
    """argparse type of one rule: its name or spec in its normal form (:func:`fa_jax.rules.normalize`:
    ``"kp( lam = .9 )"`` -> ``"kp(lam=0.9)"``); an unknown rule or a bad spec is an ArgumentTypeError."""
    from fa_jax import rules  # noqa: PLC0415  (this module stays importable without jax)

    try:
        return rules.normalize(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).splitlines()[0]) from None


def rule_list() -> Callable[[str], list[str]]:
    """argparse type of ``--rules``: a comma-separated list of rule names or specs, cut only at commas
    outside parentheses (``"bp,wm(eta=0.1,d=0.1)"`` -> ``["bp", "wm(d=0.1;eta=0.1)"]``), each in its
    normal form (:func:`rule`), so one rule spelled twice (``"kp,kp()"``) is a repeated item."""

    def parse(text):
        from fa_jax.rules import split_specs  # noqa: PLC0415  (this module stays importable without jax)

        try:
            items = [t.strip() for t in split_specs(text) if t.strip()]
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if not items:
            raise argparse.ArgumentTypeError(f"empty list {text!r}")
        return check_unique([rule(t) for t in items], text, items, "rule")

    parse.item_type, parse.unique, parse.what = rule, True, "rule"
    return parse


def fail(prog: str, err: Exception) -> NoReturn:
    """Print ``prog: error: <err>`` on one line and exit 2 (bad input, before any compilation);
    in a multi-process run the other processes are told and end too (:func:`fa_jax.sharding.abandon`)."""
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    sys.stderr.write(f"{prog}: error: {msg}\n")
    from fa_jax.training import sharding  # noqa: PLC0415  (this module stays importable without jax)

    sharding.abandon()
    sys.exit(2)


class guarded(contextlib.ContextDecorator):
    """``@cli.guarded("parity.py")`` on a script's ``main``: what fails after the up-front
    checks is still one line, ``prog: error: ...``, and exit code 2, never a traceback: a
    write that fails (disk full, read-only folder: the path and the reason; the run directory
    then has no ``summary.json``), an :class:`fa_jax.errors.InputError` (fa_jax's own checks, e.g.
    a sweep refused as too large for the device's memory, :mod:`fa_jax.training.memory`), the
    device running out of memory. Any other exception, a ``ValueError`` raised by JAX or by the
    user's own model included, keeps its traceback. Set
    ``FA_JAX_TRACEBACK=1`` to get the traceback instead. Ctrl-C inside ends the process with
    exit code 130 and one line naming what was kept and ``--resume RUN_DIR``
    (:mod:`fa_jax.interrupt`; the handler is installed here unless the script did it
    first with :func:`~fa_jax.interrupt.on_ctrl_c`). A script writes PNG files without a
    screen: inside, matplotlib's backend is ``Agg`` unless ``MPLBACKEND`` names another (the
    library itself never sets one)."""

    def __init__(self, prog: str):
        self.prog = prog

    def __enter__(self):
        os.environ.setdefault("MPLBACKEND", "Agg")
        self._interrupts = contextlib.ExitStack()
        if not interrupt.installed() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous = signal.getsignal(signal.SIGINT)
            interrupt.on_ctrl_c(self.prog)
            self._interrupts.callback(signal.signal, signal.SIGINT, previous)
        self._interrupts.enter_context(interrupt.guarding())
        return self

    def __exit__(self, typ, err, tb):
        interrupted = isinstance(err, KeyboardInterrupt) and interrupt.installed()
        self._interrupts.close()
        if interrupted:  # one line, the lock released, no interpreter shutdown (interrupt module doc)
            runs = lock.held()
            lock.release_all()
            if os.environ.get("FA_JAX_TRACEBACK"):
                traceback.print_exception(err)
            interrupt.stop(self.prog, runs)
        if err is not None:  # the run stops writing: its run directory is free again
            lock.release_all()
        if err is None or os.environ.get("FA_JAX_TRACEBACK"):
            return False
        if isinstance(err, OSError):
            writing = err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)
            where = (f"cannot write {err.filename}" if writing else str(err.filename)) if err.filename else "I/O error"
            fail(self.prog, ValueError(f"{where}: {err.strerror or err} (errno {err.errno}); the run is incomplete "
                                       f"(no summary.json)"))
        if isinstance(err, InputError):  # fa_jax's own checks; any other ValueError keeps its traceback
            fail(self.prog, err)
        if "RESOURCE_EXHAUSTED" in str(err):
            fail(self.prog, ValueError(f"the device ran out of memory ({str(err).splitlines()[0][:200]}); "
                                       f"reduce seeds, width or batch size"))
        return False


def apply_defaults(args: argparse.Namespace, values: dict) -> None:
    """A preset (``--quick``, ``--preset NAME``): set each of ``values`` on ``args`` unless the user
    set that option (:func:`given`: on the command line or in a config, even to the default's
    value) or an earlier preset did (``--quick`` then ``--preset``: the first one wins)."""
    mine = given(args)
    for k, v in values.items():
        if not hasattr(args, k):
            raise InputError(f"preset key {k!r} is not an option of this script")
        if k not in mine and k not in args._preset:
            setattr(args, k, v)
            args._preset.add(k)


def settings(args: argparse.Namespace, default: dict, quick: dict) -> dict:
    """A study's settings: ``default``, then ``quick`` (with ``--quick``), then every flag of
    ``default`` the user gave (flags without defaults of their own: None means not given)."""
    cfg = {**default, **(quick if getattr(args, "quick", False) else {})}
    cfg.update({k: getattr(args, k) for k in default if getattr(args, k, None) is not None})
    return cfg


def check_positive(flag: str, values: Iterable[float]) -> None:
    """One-line ValueError ``<flag> must be positive, got x`` for the first of ``values`` not > 0."""
    for v in values:
        if not v > 0:
            raise InputError(f"{flag} must be positive, got {v}")


def check_known(values: Iterable, known: Collection[str], what: str) -> None:
    """One-line ValueError ``unknown <what> 'x'; known: a, b`` for the first of ``values`` not in ``known``."""
    for v in values:
        if v not in known:
            raise InputError(f"unknown {what} {v!r}; known: {', '.join(known)}")


def check_run_sizes(args: argparse.Namespace | dict,
                    names: Sequence[str] = ("seeds", "steps", "batch_size", "eval_every"), *,
                    multiple: bool = True) -> None:
    """One-line ValueError unless every ``--name`` is >= 1 and (with ``multiple``) ``--steps`` is a
    multiple of ``--eval-every``. args: parsed flags, or a dict of resolved settings."""
    get = args.get if isinstance(args, dict) else lambda name: getattr(args, name)
    for name in names:
        if get(name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {get(name)}")
    if multiple:
        check_multiple(get("steps"), get("eval_every"))


def check_multiple(steps: int, eval_every: int) -> None:
    """One-line ValueError unless ``--steps`` is a multiple of ``--eval-every`` (evaluations end the run)."""
    if steps % eval_every:
        raise InputError(f"--steps {steps} is not a multiple of --eval-every {eval_every}")


def add_run_flags(p: argparse.ArgumentParser, job: str) -> None:
    """The flags of every run: ``--out DIR`` (default ``runs/<job>-<time>``), ``--no-progress``,
    ``--checkpoint-every N``, ``--keep-checkpoints K``, ``--tensorboard`` and ``--resume RUN_DIR`` (which
    :meth:`ArgParser.parse_known_args` resolves: :meth:`fa_jax.runs.configs.Config.resume`); read by
    :meth:`fa_jax.runs.study.Study.from_args`."""
    p.add_argument("--out", default=None, help=f"run directory (default runs/{job}-<time>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="save the whole train state every STEPS steps (default: about once a minute, "
                        "at a compiled chunk's end) and at the end of each sweep; 0: no checkpoints")
    p.add_argument("--keep-checkpoints", type=int, default=2, metavar="K",
                   help="keep the newest K checkpoints of each sweep (default 2)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the killed run in RUN_DIR from its checkpoints, with the config it "
                        "recorded (the result equals an uninterrupted run bit for bit)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write RUN_DIR/tensorboard/ at the end: TensorBoard event logs of metrics.jsonl, one "
                        "run per cell and seed plus the seeds' mean (needs pip install 'fa_jax[tensorboard]')")


def add_training_flags(p: argparse.ArgumentParser, *, seeds: int, steps: int | None, batch_size: int | None,
                       eval_every: int, optimizer: str = "adam", lr: float = 1e-3, optimizer_help: str | None = None,
                       per_task: str | None = None) -> None:
    """The flags of a sweep's training loop, with a script's defaults: ``--seeds`` (vmapped),
    ``--steps``, ``--batch-size``, ``--eval-every``, ``--optimizer`` (an ``fj.optimizer`` name), ``--lr``.
    ``per_task``: the text saying what a None ``steps`` / ``batch_size`` default stands for."""
    tail = f" (default: {per_task})" if per_task else ""
    p.add_argument("--seeds", type=int, default=seeds, help="number of seeds (vmapped)")
    p.add_argument("--steps", type=int, default=steps, help="training steps" + tail)
    p.add_argument("--batch-size", type=int, default=batch_size, help="examples per step" + tail)
    p.add_argument("--eval-every", type=int, default=eval_every, help="steps between test evaluations")
    p.add_argument("--optimizer", default=optimizer, help=optimizer_help or "an fj.optimizer name")
    p.add_argument("--lr", type=float, default=lr, help="learning rate")


def add_feedback_flags(p: argparse.ArgumentParser) -> None:
    """``--feedback-scale``, ``--feedback-dist``, ``--feedback-scaling``: the options of
    :func:`fa_jax.init_feedback`, read back by :func:`feedback_options`."""
    from fa_jax.rules.feedback import DISTS, SCALINGS

    p.add_argument("--feedback-scale", type=float, default=1.0)
    p.add_argument("--feedback-dist", default="uniform", help=f"one of {', '.join(DISTS)}")
    p.add_argument("--feedback-scaling", default="fan_in", help=f"one of {', '.join(SCALINGS)}")


def feedback_options(args: argparse.Namespace) -> dict:
    """``{"dist", "scaling", "scale"}`` from :func:`add_feedback_flags`'s flags, checked (one-line errors)."""
    from fa_jax.rules.feedback import check_feedback_options

    opts = {"dist": args.feedback_dist, "scaling": args.feedback_scaling, "scale": args.feedback_scale}
    check_feedback_options(**opts)
    return opts


def add_data_parallel_flag(p: argparse.ArgumentParser) -> None:
    """``--data-parallel D``: split each seed's batch over D devices (``fj.sweep(data_parallel=)``)."""
    p.add_argument("--data-parallel", type=int, default=1, metavar="D",
                   help="split every seed's training batch over D devices (big models, few seeds; "
                        "default 1: devices only hold different seeds)")


def check_data_parallel(args: argparse.Namespace) -> None:
    """One-line ValueError unless ``--data-parallel`` is >= 1, divides ``--batch-size`` and fits the devices."""
    import jax  # noqa: PLC0415  (keep the CLI helpers importable without initializing jax)

    d = args.data_parallel
    if d < 1:
        raise InputError(f"--data-parallel must be >= 1, got {d}")
    if args.batch_size % d:
        raise InputError(f"--batch-size {args.batch_size} does not split over --data-parallel {d}")
    if d > jax.local_device_count():
        raise InputError(f"--data-parallel {d} needs {d} devices; this machine has {jax.local_device_count()}")
