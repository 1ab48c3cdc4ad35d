"""Run directories: a writable folder, atomic JSON files, append-only JSONL metrics.

Layout every run writes: ``config.json`` (resolved config), ``metrics.jsonl`` (one row per
logged step, rule and seed), ``summary.json`` (written last, so a directory with a
summary is complete) and PNG plots.
"""

import json
import os
import tempfile
import time
from pathlib import Path


def default_dir(name: str) -> Path:
    """``runs/<name>-YYYYmmdd-HHMMSS`` (a new folder per run: nothing is overwritten)."""
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare(path) -> Path:
    """Create ``path`` (and parents) and prove it is writable; one-line ValueError otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"--out {str(path)!r} is not writable ({err.strerror or err})") from None
    return path


def write_json(path, obj) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def append_jsonl(path, rows) -> None:
    """Append rows to a JSONL file, one JSON object per line, flushed to disk."""
    with open(path, "a") as f:
        f.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
