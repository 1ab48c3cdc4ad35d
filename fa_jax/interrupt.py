"""Ctrl-C in a script: exit code 130 and one line saying what was kept and how to continue.

:func:`on_ctrl_c` (first thing in a script, before the heavy imports) replaces Python's SIGINT
handler. Until the script's :class:`fa_jax.runs.cli.guarded` block starts, nothing has been
written: Ctrl-C prints ``prog: interrupted; nothing was written`` and exits 130 at once. Inside
it, Ctrl-C raises ``KeyboardInterrupt`` where the script is, so the ``finally`` blocks run (an
asynchronous checkpoint save finishes, :meth:`fa_jax.training.checkpoint.Checkpointer.close`);
then :func:`report` names the run directory, its newest checkpoints and ``--resume RUN_DIR``,
the run lock is released and the process ends with :func:`os._exit` — an interrupted XLA
compilation leaves the runtime in a state whose normal interpreter shutdown can crash.

A Ctrl-C that lands while Python runs a finalizer or a gc callback would be dropped there (Python
prints "Exception ignored" and goes on): :func:`on_ctrl_c` also installs a ``sys.unraisablehook``
that sends it again a moment later.

Writes that must not be cut (a checkpoint save, an atomic JSON file, a metrics line, a PNG)
run inside :func:`deferred`: a Ctrl-C there is held until the write is complete. A third Ctrl-C
while one is held ends the process at once. Without :func:`on_ctrl_c` (the library used from
Python or a notebook) :func:`deferred` does nothing and Ctrl-C behaves as Python's default.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

EXIT = 130  # 128 + SIGINT, what a shell reports for a process ended by Ctrl-C

_state = {"prog": None, "guarded": False, "defer": 0, "pending": 0}
REDELIVER_S = 0.05  # a Ctrl-C that Python dropped is sent again after this many seconds


def on_ctrl_c(prog: str) -> None:
    """Handle Ctrl-C for the script ``prog`` from now on (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state["prog"] = prog
    signal.signal(signal.SIGINT, _handler)
    if sys.unraisablehook is not _unraisable:
        _state["hook"] = sys.unraisablehook
        sys.unraisablehook = _unraisable


def _unraisable(unraisable) -> None:
    """``sys.unraisablehook``: a ``KeyboardInterrupt`` raised while Python ran a finalizer or a gc
    callback (XLA's, say) is dropped there, and the script would run on; send the Ctrl-C again,
    shortly, from another thread, so that it lands where it can unwind."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt) and installed():
        timer = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()
        return
    _state.get("hook", sys.__unraisablehook__)(unraisable)


def installed() -> bool:
    """Whether :func:`on_ctrl_c` handles Ctrl-C in this process."""
    return signal.getsignal(signal.SIGINT) is _handler


def _handler(signum, frame) -> None:
    if _state["defer"]:
        _state["pending"] += 1
        if _state["pending"] >= 3:
            _exit(f"{_state['prog']}: interrupted three times during a save; stopped without finishing it")
        if _state["pending"] == 1:
            _say(f"{_state['prog']}: interrupted; finishing the save in progress, then stopping")
        return
    if not _state["guarded"]:
        _exit(f"{_state['prog']}: interrupted; nothing was written")
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then raise it (nested blocks: at the outermost end)."""
    if not installed() or threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
        if not _state["defer"] and _state["pending"]:
            _state["pending"] = 0
            if _state["guarded"]:
                raise KeyboardInterrupt
            _exit(f"{_state['prog']}: interrupted; nothing was written")


@contextlib.contextmanager
def guarding() -> Iterator[None]:
    """Mark the script's guarded block (:class:`fa_jax.runs.cli.guarded`): Ctrl-C inside unwinds."""
    before = _state["guarded"]
    _state["guarded"] = True
    try:
        yield
    finally:
        _state["guarded"] = before


def kept(runs: list[Path], prog: str = "SCRIPT") -> str:
    """What the run directories ``runs`` keep and how to continue them (with the script this
    process runs, else ``prog``), in a few words."""
    from fa_jax.runs import rundir  # noqa: PLC0415  (keep the handler's module light)
    from fa_jax.training.checkpoint import latest_step  # noqa: PLC0415

    if not runs:
        return "nothing was written"
    script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else prog
    parts = []
    for out in runs:
        saved = rundir.saved_checkpoints(out)
        if (out / "summary.json").exists():
            parts.append(f"{out} holds the finished run")
        elif saved:
            steps = [latest_step(d) for d in saved]
            parts.append(f"kept {out} with checkpoints of {len(saved)} sweep(s) (newest at step {max(steps)}); "
                         f"continue with: python {script} --resume {out}")
        else:
            parts.append(f"{out} has no checkpoint yet; python {script} --resume {out} starts it over")
    return "; ".join(parts)


def report(prog: str, runs: list[Path]) -> str:
    """The line printed when ``prog`` is interrupted while it writes ``runs``."""
    return f"{prog}: interrupted; {kept(runs, prog)}"


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _exit(line: str) -> None:
    _say(line)
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    os._exit(EXIT)


def stop(prog: str, runs: list[Path]) -> None:
    """End the process after a Ctrl-C: the one line of :func:`report`, exit code 130."""
    try:
        line = report(prog, runs)
    except Exception:  # noqa: BLE001 - the report must not turn an interrupt into a traceback
        line = f"{prog}: interrupted; run directories: {', '.join(map(str, runs)) or 'none'}"
    _exit(line)
