"""Command-line plumbing shared by the experiment scripts: one-line errors (exit code 2) and config files.

Every ``ArgParser`` accepts ``--config PATH.py`` (a Python file whose ``get_config()`` returns a
dict ``{option dest: value}``, as in the flax examples) and ``--config.KEY=VALUE`` /
``--config.KEY VALUE`` overrides (VALUE parsed with the option's ``type``; KEY may use - or _).
Precedence: explicit flag > --config.KEY > config file > preset (``--quick``, ``--preset``:
:func:`apply_defaults`) > parser default. The parser records which options the user set (on the
command line, in a config or, with ``--resume``, in the run's ``config.json``: :func:`given`), so
a typed value equal to the default still beats a preset. Every key and value is checked against
the parser before the script runs (``load_config``, ``apply_config``).
"""

import argparse
import contextlib
import copy
import errno
import json
import os
import pathlib
import sys
import traceback

from fa_jax.runs import lock
from fa_jax.errors import InputError

CONFIG_HELP = ("Python file whose get_config() returns {option: value} (e.g. experiments/configs/); "
               "--config.KEY=VALUE overrides one key; explicit flags win over both")


_UNSET = object()


class Args(argparse.Namespace):
    """The parsed flags; also knows which options the user set (:func:`given`), outside ``vars()``."""

    __slots__ = ("_given", "_preset")


def given(args) -> set:
    """The option names (dests) set on the command line, by ``--config``/``--config.KEY`` or by
    ``--resume``'s recorded config; TypeError for flags not parsed by :class:`ArgParser`."""
    try:
        return args._given
    except AttributeError:
        raise TypeError("flags parsed by fa_jax.runs.cli.ArgParser are needed to tell given options") from None


class ArgParser(argparse.ArgumentParser):
    """An ArgumentParser with ``--config`` support whose errors are one line on stderr, exit code 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--config", default=None, metavar="PATH.py", help=CONFIG_HELP)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        """Parse; with --resume RUN_DIR / --config / --config.KEY, parse again with their values as
        defaults (in that order of precedence, lowest first; explicit flags win over all), and with
        --resume set ``out`` to RUN_DIR (see :func:`add_run_flags`).

        The parser's own defaults are restored afterwards, so ``get_default`` still gives the
        script's defaults. The result is an :class:`Args` that knows which options were given
        (:func:`given`: the explicit flags and the configured keys).
        """
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rest, overrides = split_overrides(argv)
        except ValueError as err:
            self.error(str(err))
        namespace = Args() if namespace is None else namespace
        explicit = self._explicit(rest)
        first, extras = super().parse_known_args(rest, copy.copy(namespace))
        resume = getattr(first, "resume", None)
        configured = set()
        if first.config is None and not overrides and resume is None:
            ns, extras = super().parse_known_args(rest, namespace)
            return self._mark(ns, explicit), extras
        saved = [(a, a.default) for a in self._actions], dict(self._defaults)
        try:
            try:
                if resume is not None:
                    configured |= set(apply_recorded(self, resume))
                if first.config is not None:
                    configured |= set(apply_config(self, load_config(first.config), first.config))
                for key, text in overrides:
                    configured |= set(apply_config(self, {key: text}, f"--config.{key}"))
            except ValueError as err:
                self.error(str(err).splitlines()[0])
            ns, extras = super().parse_known_args(rest, namespace)
            if resume is not None:
                ns.out = resume
            return self._mark(ns, explicit | configured), extras
        finally:
            for action, default in saved[0]:
                action.default = default
            self._defaults.clear()
            self._defaults.update(saved[1])

    def _explicit(self, argv) -> set:
        """The dests the command line ``argv`` sets (parsed once with every default unset)."""
        saved = [(a, a.default) for a in self._actions], dict(self._defaults)
        try:
            for a in self._actions:
                if a.default is not argparse.SUPPRESS:
                    a.default = _UNSET
            self._defaults.clear()
            ns, _ = super().parse_known_args(argv, argparse.Namespace())
        finally:
            for action, default in saved[0]:
                action.default = default
            self._defaults.update(saved[1])
        return {k for k, v in vars(ns).items() if v is not _UNSET} - {"config"}

    @staticmethod
    def _mark(ns, dests: set):
        if isinstance(ns, Args):
            ns._given, ns._preset = set(dests), set()
        return ns


def split_overrides(argv):
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


def load_config(path) -> dict:
    """Run the Python file ``path`` and return its ``get_config()`` dict; one-line ValueError otherwise."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise InputError(f"config file {path} does not exist" if not p.exists() else f"config {path} is not a file")
    try:
        code = compile(p.read_bytes(), str(path), "exec")
    except OSError as err:
        raise InputError(f"cannot read config file {path}: {err.strerror}") from None
    except (SyntaxError, ValueError) as err:  # ValueError: null bytes (Python 3.11)
        where = f"{path}:{err.lineno}" if getattr(err, "lineno", None) else str(path)
        raise InputError(f"{where}: syntax error in config file: {getattr(err, 'msg', err)}") from None
    scope = {"__file__": str(path), "__name__": "__config__"}
    try:
        exec(code, scope)
    except (Exception, SystemExit) as err:
        raise InputError(_raised(path, err)) from None
    if not callable(scope.get("get_config")):
        raise InputError(f"config file {path} defines no get_config() function")
    try:
        config = scope["get_config"]()
    except (Exception, SystemExit) as err:
        raise InputError(_raised(path, err)) from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: get_config() returned {type(config).__name__}, expected a dict")
    return config


def _raised(path, err) -> str:
    """``path:line: config file raised Type: message`` (the deepest line of the traceback in that file)."""
    lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
    where = f"{path}:{lines[-1]}" if lines else str(path)
    msg = str(err).splitlines()[0] if str(err) else "(no message)"
    return f"{where}: config file raised {type(err).__name__}: {msg}"


def config_options(parser) -> dict:
    """{dest: action} of the options a config may set (all but --help and --config)."""
    options = {}
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction)) or a.dest in ("config", argparse.SUPPRESS):
            continue
        # a dest shared by several flags (--preset and --quick = --preset quick): the typed one describes it
        if a.dest not in options or type(a) is argparse._StoreAction:
            options[a.dest] = a
    return options


def apply_config(parser, mapping, source: str) -> dict:
    """Check ``mapping`` ({dest: value}) against ``parser`` and set it as the parser's defaults.

    ``source`` names where the mapping came from (a file, ``--config.KEY``, a run's config.json)
    in the one-line ValueError for an unknown key, a wrong type or a value outside ``choices``.
    Strings for typed options are parsed with the option's ``type``; returns the checked values.
    """
    if not isinstance(mapping, dict):
        raise InputError(f"{source}: a config is a dict, got {type(mapping).__name__}")
    options = config_options(parser)
    values = {}
    for key, value in mapping.items():
        dest = key.replace("-", "_") if isinstance(key, str) else key
        if dest not in options:
            raise InputError(f"unknown key {key!r} in {source}; allowed: {', '.join(sorted(options))}")
        values[dest] = check_value(options[dest], value, f"{dest}={value!r} in {source}")
    parser.set_defaults(**values)
    return values


def _scalar(type_, value, where):
    """``value`` checked (and, from a string, parsed) as one item of ``type_``."""
    if type_ is None or type_ is str:
        if not isinstance(value, str):
            raise InputError(f"{where}: expected str, got {type(value).__name__}")
        return value
    if type_ in (int, float):
        if isinstance(value, str):
            try:
                return type_(value)
            except ValueError:
                raise InputError(f"{where}: expected {type_.__name__}") from None
        ok = (int,) if type_ is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok):
            raise InputError(f"{where}: expected {type_.__name__}, got {type(value).__name__}")
        return type_(value)
    if isinstance(value, str):  # any other argparse type: parse the string as the command line would
        try:
            return type_(value)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
            raise InputError(f"{where}: {err}") from None
    return value


def _type_name(type_) -> str:
    return "str" if type_ is None else getattr(type_, "__name__", "value")


def check_value(action, value, where):
    """One config value for ``action``, checked like the command line would (type, nargs, choices)."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected bool (true or false), got {type(value).__name__}")
        return value
    if isinstance(action, argparse._StoreConstAction):
        if value not in (action.const, action.default):
            raise InputError(f"{where}: expected {action.const!r} or {action.default!r}")
        return value
    if value is None and action.default is None:
        return None
    item_type = getattr(action.type, "item_type", None)
    if item_type is not None or action.nargs not in (None, "?"):
        value = _list(action, value, where, item_type if item_type is not None else action.type)
    else:
        value = _scalar(action.type, value, where)
    if action.choices is not None:
        for v in value if isinstance(value, list) else [value]:
            if v not in action.choices:
                raise InputError(f"{where}: expected one of {', '.join(map(str, action.choices))}")
    return value


def _list(action, value, where, item_type):
    """A list option (``csv`` type or ``nargs``): a list of items, or a string parsed as on the command line."""
    expected = f"list of {_type_name(item_type)}"
    if isinstance(value, str):
        if getattr(action.type, "item_type", None) is not None:
            try:
                return action.type(value)
            except argparse.ArgumentTypeError as err:
                raise InputError(f"{where}: {err}; expected {expected}") from None
        value = value.replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{where}: expected {expected}, got {type(value).__name__}")
    if isinstance(action.nargs, int) and len(value) != action.nargs:
        raise InputError(f"{where}: expected {expected} of length {action.nargs}")
    if not value and action.nargs == "+":
        raise InputError(f"{where}: expected a non-empty {expected}")
    values = [_scalar(item_type, v, where) for v in value]
    if getattr(action.type, "unique", False):
        try:
            check_unique(values, value)
        except argparse.ArgumentTypeError as err:
            raise InputError(f"{where}: {err}") from None
    return values


def csv(type_=str, *, unique: bool = True, empty: bool = False):
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


def check_unique(values: list, where) -> list:
    """``values`` unless one repeats: ArgumentTypeError ``'bp' is repeated in 'bp,bp'``."""
    seen = set()
    for v in values:
        if v in seen:
            raise argparse.ArgumentTypeError(f"{v!r} is repeated in {where!r}; each item may appear once")
        seen.add(v)
    return values


def fail(prog: str, err: Exception):
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
    ``FA_JAX_TRACEBACK=1`` to get the traceback instead. A script writes PNG files without a
    screen: inside, matplotlib's backend is ``Agg`` unless ``MPLBACKEND`` names another (the
    library itself never sets one)."""

    def __init__(self, prog: str):
        self.prog = prog

    def __enter__(self):
        os.environ.setdefault("MPLBACKEND", "Agg")
        return self

    def __exit__(self, typ, err, tb):
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


def apply_defaults(args, values: dict) -> None:
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


def check_known(values, known, what: str) -> None:
    """One-line ValueError ``unknown <what> 'x'; known: a, b`` for the first of ``values`` not in ``known``."""
    for v in values:
        if v not in known:
            raise InputError(f"unknown {what} {v!r}; known: {', '.join(known)}")


def check_run_sizes(args, names=("seeds", "steps", "batch_size", "eval_every"), *, multiple: bool = True) -> None:
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


def add_run_flags(p, job: str) -> None:
    """The flags of every run: ``--out DIR`` (default ``runs/<job>-<time>``), ``--no-progress``,
    ``--checkpoint-every N``, ``--keep-checkpoints K`` and ``--resume RUN_DIR`` (which
    :meth:`ArgParser.parse_known_args` resolves: see :func:`apply_recorded`); read by
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


def add_training_flags(p, *, seeds: int, steps: int | None, batch_size: int | None, eval_every: int,
                       optimizer: str = "adam", lr: float = 1e-3, optimizer_help: str | None = None,
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


def add_feedback_flags(p) -> None:
    """``--feedback-scale``, ``--feedback-dist``, ``--feedback-scaling``: the options of
    :func:`fa_jax.init_feedback`, read back by :func:`feedback_options`."""
    from fa_jax.rules.feedback import DISTS, SCALINGS

    p.add_argument("--feedback-scale", type=float, default=1.0)
    p.add_argument("--feedback-dist", default="uniform", help=f"one of {', '.join(DISTS)}")
    p.add_argument("--feedback-scaling", default="fan_in", help=f"one of {', '.join(SCALINGS)}")


def feedback_options(args) -> dict:
    """``{"dist", "scaling", "scale"}`` from :func:`add_feedback_flags`'s flags, checked (one-line errors)."""
    from fa_jax.rules.feedback import check_feedback_options

    opts = {"dist": args.feedback_dist, "scaling": args.feedback_scaling, "scale": args.feedback_scale}
    check_feedback_options(**opts)
    return opts


def add_data_parallel_flag(p) -> None:
    """``--data-parallel D``: split each seed's batch over D devices (``fj.sweep(data_parallel=)``)."""
    p.add_argument("--data-parallel", type=int, default=1, metavar="D",
                   help="split every seed's training batch over D devices (big models, few seeds; "
                        "default 1: devices only hold different seeds)")


def check_data_parallel(args) -> None:
    """One-line ValueError unless ``--data-parallel`` is >= 1, divides ``--batch-size`` and fits the devices."""
    import jax  # noqa: PLC0415  (keep the CLI helpers importable without initializing jax)

    d = args.data_parallel
    if d < 1:
        raise InputError(f"--data-parallel must be >= 1, got {d}")
    if args.batch_size % d:
        raise InputError(f"--batch-size {args.batch_size} does not split over --data-parallel {d}")
    if d > jax.local_device_count():
        raise InputError(f"--data-parallel {d} needs {d} devices; this machine has {jax.local_device_count()}")


def apply_recorded(parser, run_dir) -> dict:
    """``--resume RUN_DIR``: the options recorded in ``RUN_DIR/config.json`` become ``parser``'s
    defaults (flags given now still win, and a changed setting is then refused before anything
    is written: :meth:`fa_jax.runs.study.Study.start`); returns them; one-line ValueError if that
    file cannot be used."""
    path = pathlib.Path(run_dir) / "config.json"
    try:
        recorded = json.loads(path.read_text())
        options = set(config_options(parser)) - {"resume", "out"}
        return apply_config(parser, {k: v for k, v in recorded.items() if k in options}, str(path))
    except (OSError, json.JSONDecodeError, ValueError, AttributeError) as err:
        raise InputError(f"--resume {run_dir!r}: cannot use {path} ({getattr(err, 'strerror', None) or err})") from None
