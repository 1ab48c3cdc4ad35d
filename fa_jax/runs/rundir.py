"""Run directories: a writable folder, atomic JSON files, append-only JSONL metrics.

Layout every run writes: ``config.json`` (resolved config and the environment, see
:func:`environment`), ``metrics.jsonl`` (one row per logged step, rule and seed),
``checkpoints/<sweep>/<step>/`` (orbax, see :mod:`fa_jax.training.checkpoint`; ``<sweep>``: the sweep's
name, :func:`checkpoint_folder`), PNG plots and
``summary.json`` (written last, so a directory with a summary is complete).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

from fa_jax import interrupt
from fa_jax.errors import InputError


def default_dir(name: str) -> Path:
    """``runs/<name>-YYYYmmdd-HHMMSS`` (a new folder per run: nothing is overwritten)."""
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) and prove it is writable; one-line ValueError otherwise."""
    path = Path(path)
    try:
        path.resolve()
    except (RuntimeError, OSError):  # Python 3.11: RuntimeError; later: OSError(ELOOP)
        raise InputError(f"--out {str(path)!r} is (or is inside) a symbolic link loop") from None
    if path.is_symlink() and not path.exists():
        raise InputError(f"--out {str(path)!r} is a symbolic link to {os.readlink(path)!r}, which does not exist")
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise InputError(f"--out {str(path)!r} is not writable ({err.strerror or err})") from None
    return path


def write_json(path: str | os.PathLike[str], obj: object) -> None:
    """Write JSON atomically (temp file in the same folder, then rename). A failed write
    (disk full, read-only folder, a NaN in ``obj``) leaves neither ``path`` nor the temp file;
    an OSError then names ``path``."""
    _atomic(path, lambda f: (json.dump(obj, f, indent=2, allow_nan=False), f.write("\n")))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` atomically, like :func:`write_json`."""
    _atomic(path, lambda f: f.write(text))


def _atomic(path, write) -> None:
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as err:
        raise named(err, path) from None
    try:
        with interrupt.deferred():  # a Ctrl-C waits for the file to be complete
            os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it (mkstemp makes 0600)
            with os.fdopen(fd, "w") as f:
                write(f)
            os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise named(err, path) from None
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def append_jsonl(path: str | os.PathLike[str], rows: Iterable[dict]) -> None:
    """Append rows to a JSONL file, one JSON object per line, flushed to disk (an OSError names ``path``)."""
    try:
        with interrupt.deferred(), open(path, "a") as f:  # a Ctrl-C waits for whole lines
            f.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise named(err, path) from None


def named(err: OSError, path: str | os.PathLike[str]) -> OSError:
    """``err`` naming ``path`` (a failed ``write()`` on an open file names none), same errno."""
    if err.filename is not None:
        return err
    return OSError(err.errno, err.strerror or str(err), str(path))


def read_jsonl(path: str | os.PathLike[str]) -> list[dict]:
    """The rows of a JSONL file; a torn last line (a write cut by a kill) is dropped with a warning."""
    with open(path) as f:
        lines = f.read().split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:  # a bad line before the end is not a torn write: corrupt file
                raise InputError(f"{path}: line {i + 1} is not JSON") from None
            warnings.warn(f"{path}: dropped a torn last line", stacklevel=2)
    return rows


def saved_checkpoints(out: str | os.PathLike[str]) -> list[Path]:
    """The sweep folders under ``out/checkpoints/`` that hold at least one complete checkpoint."""
    from fa_jax.training.checkpoint import latest_step  # noqa: PLC0415  (no orbax import)

    root = Path(out) / "checkpoints"
    return [d for d in sorted(root.iterdir()) if latest_step(d) is not None] if root.is_dir() else []


def start(out: str | os.PathLike[str], resume: bool = False) -> Path:
    """Begin (or, with ``resume``, continue) a run in ``out``.

    A new run refuses a folder holding a finished run (``summary.json``) or one with saved
    checkpoints (pass ``--resume``); a folder left by a run refused before it trained (a
    ``config.json``, no checkpoint) is reused, and its stale ``metrics.jsonl`` removed. A resumed
    run changes nothing here: it rebuilds ``metrics.jsonl`` and ``summary.json`` at its end.
    """
    out = Path(out)
    if resume:
        return out
    if saved_checkpoints(out):
        raise InputError(f"{str(out)!r} already holds a run with checkpoints; pass --resume {out} to continue it "
                         f"or choose a new --out")
    if (out / "summary.json").exists():
        raise InputError(f"{str(out)!r} already holds a finished run (summary.json); choose a new --out")
    (out / "metrics.jsonl").unlink(missing_ok=True)
    return out


def checkpointing(out: str | os.PathLike[str], name: str, every: int | None = None, enabled: bool = True,
                  keep: int = 2) -> dict:
    """:func:`fa_jax.sweep` arguments that checkpoint one sweep into ``out/checkpoints/<folder>``
    (:func:`checkpoint_folder` of ``name``) every ``every`` steps (default: about once a minute) and
    at its end, keeping the newest ``keep``.

    Args:
        out: the run directory.
        name: the sweep's name (a rule's normal form, ``cnn-kp(lam=0.9)``, ``method=dfa n=20``);
            distinct names get distinct folders.
        every: steps between checkpoints (``checkpoint_every``; default None: about once a minute,
            or none in a multi-process run, where sweeps cannot checkpoint).
        enabled: False gives ``{}`` (no checkpoints).
        keep: checkpoints kept, the newest (``keep_checkpoints``; default 2).

    Returns:
        ``{"checkpoint", "checkpoint_every", "keep_checkpoints"}`` for ``fj.sweep(**...)``, or ``{}``.
    """
    folder = checkpoint_folder(name)
    if not enabled:
        return {}
    import jax  # noqa: PLC0415  (keep this module importable without initializing jax)

    if every is None and jax.process_count() > 1:  # several processes: none unless asked (and refused)
        return {}
    return {"checkpoint": Path(out).absolute() / "checkpoints" / folder, "checkpoint_every": every,
            "keep_checkpoints": keep}


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~=+(),;")


def checkpoint_folder(name: str) -> str:
    """The folder name of a sweep named ``name``: ``name`` itself where it is made of letters, digits
    and ``_.-~=+(),;`` (``bp``, ``kp(lam=0.9)``, ``wm(d=0.1;eta=0.1)``), any other character (and a
    leading ``.``) written ``%XX`` (its UTF-8 bytes in hex, ``%`` included: ``method=dfa%20n=20``),
    so distinct names never share a folder; a name past 200 characters is cut and given a hash of
    the whole. One-line InputError for an empty name."""
    if not isinstance(name, str) or not name:
        raise InputError(f"a sweep name must be non-empty, got {name!r}")
    folder = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
                     for c in name)
    if folder.startswith("."):  # never hidden, never . or ..
        folder = "%2E" + folder[1:]
    if len(folder) > 200:  # file systems take 255 bytes a name
        folder = folder[:180] + "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return folder


def _git_commit() -> str | None:
    """The fa_jax checkout's commit (``+dirty`` if it has uncommitted changes), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def environment() -> dict:
    """What a rerun needs besides the config: package versions, fa_jax's git commit, the
    devices, the precision settings and ``XLA_FLAGS``."""
    import jax  # noqa: PLC0415  (keep this module importable without initializing jax)

    versions = {}
    for pkg in ("fa_jax", "jax", "jaxlib", "optax", "flax", "chex", "orbax-checkpoint", "numpy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    dev = jax.devices()
    return {"python": platform.python_version(), "platform": platform.platform(), "versions": versions,
            "git_commit": _git_commit(), "backend": jax.default_backend(), "device_kind": dev[0].device_kind,
            "device_count": len(dev), "process_count": jax.process_count(),
            "x64": bool(jax.config.jax_enable_x64),
            "default_matmul_precision": jax.config.jax_default_matmul_precision,
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""), "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "")}


def write_config(out: str | os.PathLike[str], config: dict) -> None:
    """``config.json``: the resolved ``config`` plus ``environment`` (:func:`environment`)."""
    write_json(Path(out) / "config.json", {**config, "environment": environment()})
