"""One run per directory: ``run.lock``, taken atomically while a run writes its folder.

The lock file is JSON: the owner's ``pid``, ``host``, process start time (``start``, Linux),
the time it was taken, its command line and a random ``token``. It is created with
``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems), removed when the run ends
(:func:`release`, also at interpreter exit), and recognised as stale when its owner, on this
host, is gone (no such pid, or a pid reused by a later process). A lock held on another host
cannot be checked from here: the message says to delete the file if that run is dead.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path

from fa_jax.errors import InputError

NAME = "run.lock"
_held: dict[Path, str] = {}  # lock path -> our token


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def _alive(owner: dict) -> bool:
    """Whether the lock's owner may still run (True when it cannot be told: another host)."""
    if not owner.get("host"):  # unreadable: a dead owner's, unless being written right now
        return owner.get("age", 1e9) < 5.0
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    start = _start_time(pid)
    return start is None or owner.get("start") is None or start == owner["start"]


def _read(path: Path) -> dict | None:
    try:
        owner = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # torn, foreign or not a file
        try:
            return {"age": time.time() - path.stat().st_mtime}
        except OSError:
            return {}
    return owner if isinstance(owner, dict) else {"age": 1e9}


def _describe(owner: dict) -> str:
    return (f"pid {owner.get('pid')} on {owner.get('host')}, started {owner.get('taken')}: "
            f"{' '.join(map(str, owner.get('argv') or []))[:120]}")


def acquire(out: str | os.PathLike[str]) -> Path:
    """Take ``out/run.lock`` for this process (again if it already holds it); one-line ValueError
    naming the other run when a live one holds it. A stale lock is replaced."""
    path = Path(out).absolute() / NAME
    if path in _held and (_read(path) or {}).get("token") == _held[path]:
        return path
    token = secrets.token_hex(8)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_time(os.getpid()),
          "taken": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "token": token}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            owner = _read(path)
            for _ in range(40):  # a lock being written right now: read it again once it is complete
                if owner is None or owner.get("host") or owner.get("age", 1e9) >= 5.0:
                    break
                time.sleep(0.025)
                owner = _read(path)
            if owner is None:
                continue  # released meanwhile
            if _alive(owner):
                raise InputError(f"--out {str(path.parent)!r} is in use by another run ({_describe(owner)}); "
                                 f"wait for it or choose another --out (if that run is dead, delete {path})") from None
            _remove_stale(path, owner)
            continue
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me))
        except OSError as err:
            path.unlink(missing_ok=True)
            raise OSError(err.errno, err.strerror, str(path)) from None
        _held[path] = token
        return path
    raise InputError(f"--out {str(path.parent)!r}: could not take {path} (other runs keep taking it)")


def _remove_stale(path: Path, owner: dict) -> None:
    """Move the stale lock aside atomically; if what moved is not the one judged stale (a new
    owner took it meanwhile), put it back."""
    aside = path.with_name(f".{NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    moved = _read(aside)
    if moved is not None and moved.get("token") != owner.get("token"):
        try:
            os.link(aside, path)
        except OSError:
            pass
    try:
        aside.unlink(missing_ok=True)
    except OSError:  # not a file (a folder called run.lock): left aside, hidden
        pass


def release(out: str | os.PathLike[str]) -> None:
    """Remove ``out/run.lock`` if this process holds it (a no-op otherwise)."""
    path = Path(out).absolute() / NAME
    token = _held.pop(path, None)
    if token is not None and (_read(path) or {}).get("token") == token:
        path.unlink(missing_ok=True)


def held() -> list[Path]:
    """The run directories whose lock this process holds."""
    return [path.parent for path in _held]


@atexit.register
def release_all() -> None:
    """Release every lock this process holds (at exit, and when a script fails)."""
    for path in list(_held):
        release(path.parent)
