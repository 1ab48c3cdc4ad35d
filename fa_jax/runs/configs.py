"""A script's options as an ``ml_collections.ConfigDict``: config files, ``--config.KEY=VALUE``, ``--resume``.

:class:`Config` holds one field per option of an :class:`fa_jax.runs.cli.ArgParser`, typed by its
flag (``type=int``: int, ``type=float``: float, on/off flags: bool, no type: str; lists, from
:func:`fa_jax.runs.cli.csv` or ``nargs``, are checked item by item), set to the parser's default.
The ConfigDict is locked and type-safe: a float for an int field is refused, an int for a float
field becomes a float. :meth:`Config.update` sets the values of each source in turn (``--resume``'s
recorded ``config.json``, the file's ``get_config()``: :func:`load_config`, each ``--config.KEY``).
A string for an int, float or bool field is parsed by ml_collections' override parser
(``config_flags.DEFINE_config_dict``: the field's type picks absl's parser); a string for a list as
on the command line. What a ConfigDict cannot know is checked as the command line would: a bool
for an int or float, None where the default is not None, list items and lengths, repeated items,
``choices``. Every bad key, value or file is a one-line :class:`fa_jax.errors.InputError`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import pathlib
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from absl import flags
from ml_collections import config_dict, config_flags

from fa_jax.errors import InputError

if TYPE_CHECKING:
    from fa_jax.runs.cli import ArgParser


@dataclasses.dataclass(frozen=True)
class Option:
    """What a config may set for one option (an argparse dest)."""

    dest: str
    field_type: type  # the ConfigDict field's type: int, float, str, bool; object for lists and other types
    items: type | None = None  # list options: the item type
    parse: Callable[[str], Any] | None = None  # the flag's own ``type``: parses a string as the command line does
    nargs: int | str | None = None
    choices: tuple | None = None

    @property
    def expected(self) -> str:
        if self.items is not None:
            length = f" of length {self.nargs}" if isinstance(self.nargs, int) else ""
            return f"list of {_item_name(self.items)}{length}"
        if self.field_type is bool:
            return "bool (true or false)"
        return getattr(self.parse if self.field_type is object else self.field_type, "__name__", "value")


def option(action: argparse.Action, kind: object) -> Option | None:
    """The :class:`Option` of ``action`` (as ``ArgumentParser.add_argument`` returned it, given
    ``action=kind``; None: a plain store); None for actions no config sets (help, append, ...)."""
    if action.default is argparse.SUPPRESS or action.dest in ("config", argparse.SUPPRESS):
        return None
    if kind in ("store_true", "store_false"):
        return Option(action.dest, bool)
    if kind == "store_const":
        return Option(action.dest, type(action.const), choices=(action.const, action.default))
    if kind not in (None, "store"):
        return None
    items = getattr(action.type, "item_type", None)
    if items is not None or action.nargs not in (None, "?"):
        return Option(action.dest, object, items or action.type or str, action.type, action.nargs, action.choices)
    scalar = action.type or str
    return Option(action.dest, scalar if scalar in (int, float, str) else object, parse=action.type,
                  choices=action.choices)


class Config:
    """The options of ``parser`` as a locked, type-safe ConfigDict (``.dict``) holding its defaults."""

    def __init__(self, parser: ArgParser) -> None:
        self.options = dict(parser.options)
        self.prog = parser.prog
        self.defaults = {}
        for dest, opt in self.options.items():
            value = parser.get_default(dest)
            if isinstance(value, str) and opt.parse is not None:  # as argparse treats a str default
                value = opt.parse(value)
            self.defaults[dest] = value
        self.dict = config_dict.ConfigDict({d: config_dict.FieldReference(copy.deepcopy(v), self.options[d].field_type)
                                            for d, v in self.defaults.items()}).lock()

    def values(self) -> dict:
        return {dest: self.dict[dest] for dest in self.options}

    def update(self, mapping: Mapping[str, Any] | config_dict.ConfigDict, source: str) -> set[str]:
        """Set every key of ``mapping`` (a ConfigDict or dict from ``source``: a file, ``--config.KEY``,
        a run's config.json), checked; returns the dests set. Keys may use - for _."""
        if not isinstance(mapping, (dict, config_dict.ConfigDict)):
            raise InputError(f"{source}: a config is a dict, got {type(mapping).__name__}")
        done = set()
        for key, value in mapping.items():
            dest = key.replace("-", "_") if isinstance(key, str) else key
            if dest not in self.options:
                raise InputError(f"unknown key {key!r} in {source}; allowed: {', '.join(sorted(self.options))}")
            self._set(self.options[dest], value, f"{dest}={value!r} in {source}")
            done.add(dest)
        return done

    def _set(self, opt, value, where):
        if opt.items is not None:
            value = _list(opt, value, where)
        elif isinstance(value, bool) and opt.field_type in (int, float):
            raise InputError(f"{where}: expected {opt.expected}, got bool")
        elif isinstance(value, str) and opt.field_type in (int, float, bool):
            return self._override(opt, value, where)
        elif isinstance(value, str) and opt.field_type is object:
            value = _parse(opt.parse, value, where)
        if value is None and self.defaults[opt.dest] is not None:
            raise InputError(f"{where}: expected {opt.expected}, got NoneType")
        try:
            self.dict[opt.dest] = value
        except TypeError:  # the ConfigDict's type safety
            raise InputError(f"{where}: expected {opt.expected}, got {type(value).__name__}") from None
        _check_choices(opt, self.dict[opt.dest], where)

    def _override(self, opt, text, where):
        """``--config.KEY=TEXT`` parsed into the ConfigDict by ml_collections (``config_flags``)."""
        fv, token = flags.FlagValues(), f"--config.{opt.dest}={text}"
        try:
            config_flags.DEFINE_config_dict("config", self.dict, flag_values=fv, sys_argv=["", token])
            fv(["", token])
        except flags.Error:
            raise InputError(f"{where}: expected {opt.expected}") from None
        _check_choices(opt, self.dict[opt.dest], where)

    def resume(self, run_dir: str | os.PathLike) -> set[str]:
        """``--resume RUN_DIR``: the options recorded in ``RUN_DIR/config.json`` (a flag given now
        still wins; a changed setting is then refused before anything is written:
        :meth:`fa_jax.runs.study.Study.start`); one-line InputError if that file cannot be used or
        records a run of another script (:func:`check_job`: its ``job`` against this parser's ``prog``)."""
        path = pathlib.Path(run_dir) / "config.json"
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"--resume {run_dir!r}: cannot use {path} ({getattr(err, 'strerror', None) or err})") \
                from None
        if isinstance(recorded, dict) and str(self.prog).endswith(".py"):
            check_job(run_dir, recorded.get("job"), self.prog)
        try:
            keep = set(self.options) - {"resume", "out"}
            return self.update({k: v for k, v in recorded.items() if k in keep}, str(path))
        except (ValueError, AttributeError) as err:
            raise InputError(f"--resume {run_dir!r}: cannot use {path} ({getattr(err, 'strerror', None) or err})") \
                from None


def check_job(run_dir: str | os.PathLike, recorded: object, job: str) -> None:
    """One-line InputError if the run in ``run_dir`` was made by another script: its config.json's
    ``job`` (``recorded``; None: not recorded, nothing to check) against ``job``, a job name or a
    script's file name (``parity`` and ``parity.py`` are one script, - and _ alike)."""
    def key(name):
        name = pathlib.PurePath(str(name)).name
        return name.removesuffix(".py").replace("-", "_")

    if isinstance(recorded, str) and key(recorded) != key(job):
        raise InputError(f"--resume {str(run_dir)!r}: the run there was made by {recorded} (its config.json's job), "
                         f"not by {job}; resume it with that script")


def apply_config(parser: ArgParser, mapping: Mapping[str, Any] | config_dict.ConfigDict,
                 source: str) -> dict:
    """Check ``mapping`` ({option: value}) against ``parser``'s options (:meth:`Config.update`) and
    make the checked values the parser's defaults (``set_defaults``); returns them."""
    config = Config(parser)
    values = {dest: config.dict[dest] for dest in config.update(mapping, source)}
    parser.set_defaults(**values)
    return values


def _check_choices(opt, value, where):
    if opt.choices is not None and value is not None:
        for v in value if isinstance(value, list) else [value]:
            if v not in opt.choices:
                raise InputError(f"{where}: expected one of {', '.join(map(str, opt.choices))}")


def _parse(type_, text, where):
    """``text`` parsed by an argparse ``type`` as the command line would."""
    try:
        return type_(text)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
        raise InputError(f"{where}: expected {getattr(type_, '__name__', 'value')} ({err})") from None


def _item_name(type_) -> str:
    """What a list item is called in messages: int or float, else str (an argparse type parses a str)."""
    return type_.__name__ if type_ in (int, float) else "str"


def _item(type_, value, where):
    """One list item checked as ``type_`` (a string for a non-str item: parsed as on the command line;
    an argparse type of its own, e.g. :func:`fa_jax.runs.cli.rule`, takes only strings)."""
    if isinstance(value, str) and type_ is not str:
        return _parse(type_, value, where)
    ok = {int: int, float: (int, float)}.get(type_, str)
    if not isinstance(value, ok) or isinstance(value, bool) and type_ in (int, float):
        raise InputError(f"{where}: expected {_item_name(type_)}, got {type(value).__name__}")
    return type_(value) if type_ in (int, float) else value


def _list(opt, value, where):
    """A list option's value: a list of items, or a string parsed as on the command line."""
    if isinstance(value, str):
        if getattr(opt.parse, "item_type", None) is None:  # nargs: items split at commas or spaces
            value = value.replace(",", " ").split()
        else:  # cli.csv, as on the command line
            try:
                return opt.parse(value)
            except argparse.ArgumentTypeError as err:
                raise InputError(f"{where}: {err}; expected {opt.expected}") from None
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{where}: expected {opt.expected}, got {type(value).__name__}")
    if isinstance(opt.nargs, int) and len(value) != opt.nargs or not value and opt.nargs == "+":
        raise InputError(f"{where}: expected {'a non-empty ' if not value else ''}{opt.expected}")
    values = [_item(opt.items, v, where) for v in value]
    if getattr(opt.parse, "unique", False):
        try:
            check_unique(values, value, list(value), getattr(opt.parse, "what", "item"))
        except argparse.ArgumentTypeError as err:
            raise InputError(f"{where}: {err}") from None
    return values


def check_unique(values: list, where: object, written: list | None = None, what: str = "item") -> list:
    """``values`` unless one repeats: ArgumentTypeError ``'bp' is repeated in 'bp,bp'``. written:
    the items as typed when ``values`` are their normal forms, named in the message when they differ
    (``'kp()' is 'kp' again (both are the rule 'kp')``); what: the kind of item (``"rule"``)."""
    seen = {}
    for i, v in enumerate(values):
        if v in seen:
            first, again = (v, v) if written is None else (written[seen[v]], written[i])
            if first != again:
                raise argparse.ArgumentTypeError(f"{again!r} is {first!r} again (both are the {what} {v!r}) in "
                                                 f"{where!r}; each {what} may appear once")
            raise argparse.ArgumentTypeError(f"{v!r} is repeated in {where!r}; each {what} may appear once")
        seen[v] = i
    return values


def load_config(spec: str | os.PathLike) -> config_dict.ConfigDict | dict:
    """``get_config()`` of the Python file ``spec``, or ``get_config(ARG)`` for ``FILE:ARG``
    (``ml_collections.config_flags``' convention: what follows the first colon is passed on);
    a ConfigDict or a dict. One-line InputError for a missing file, a syntax error
    (``file:line``), a file that raises (the deepest line in it), no ``get_config()``, or a result
    that is no dict."""
    path, *arg = str(spec).split(":", 1)
    p = pathlib.Path(path)
    if not p.is_file():
        raise InputError(f"config file {path} does not exist" if not p.exists() else f"config {path} is not a file")
    try:
        code = compile(p.read_bytes(), path, "exec")
    except OSError as err:
        raise InputError(f"cannot read config file {path}: {err.strerror}") from None
    except (SyntaxError, ValueError) as err:  # ValueError: null bytes (Python 3.11)
        where = f"{path}:{err.lineno}" if getattr(err, "lineno", None) else path
        raise InputError(f"{where}: syntax error in config file: {getattr(err, 'msg', err)}") from None
    scope = {"__file__": path, "__name__": "__config__"}
    _run(path, exec, code, scope)
    if not callable(scope.get("get_config")):
        raise InputError(f"config file {path} defines no get_config() function")
    config = _run(path, scope["get_config"], *arg)
    if not isinstance(config, (dict, config_dict.ConfigDict)):
        raise InputError(f"{path}: get_config() returned {type(config).__name__}, expected a dict "
                         f"(an ml_collections.ConfigDict or a plain dict)")
    return config


def _run(path, fn, *args):
    """``fn(*args)``; what it raises becomes ``path:line: config file raised Type: message`` (the
    deepest line of the traceback in that file)."""
    try:
        return fn(*args)
    except (Exception, SystemExit) as err:
        lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == path]
        where = f"{path}:{lines[-1]}" if lines else path
        msg = str(err).splitlines()[0] if str(err) else "(no message)"
        raise InputError(f"{where}: config file raised {type(err).__name__}: {msg}") from None
