"""Ctrl-C: exit code 130 and one line at any moment of a script; a save in progress completes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import pytest

from fa_jax import interrupt
from fa_jax.runs import cli, lock
from fa_jax.training import checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def handler():
    """fa_jax's Ctrl-C handler in this process for one test; Python's default afterwards."""
    previous = signal.getsignal(signal.SIGINT)
    interrupt.on_ctrl_c("test")
    yield
    signal.signal(signal.SIGINT, previous)


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs at the next bytecode; give the signal time to arrive


def test_a_ctrl_c_inside_a_deferred_block_waits_for_its_end(handler):
    done = []
    with pytest.raises(KeyboardInterrupt), interrupt.guarding():
        with interrupt.deferred():
            _ctrl_c()
            done.append("after the signal")  # not cut
            with interrupt.deferred():  # nested: held until the outermost block ends
                done.append("nested")
            done.append("outer end")
        done.append("never")
    assert done == ["after the signal", "nested", "outer end"]


@pytest.fixture
def python_default():
    """Python's own SIGINT handler for one test (a pytest-xdist worker ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_without_the_handler_deferred_changes_nothing(python_default):
    assert not interrupt.installed()
    with pytest.raises(KeyboardInterrupt), interrupt.deferred():
        _ctrl_c()
        raise AssertionError("Python's default handler raises at once")


def test_importing_a_script_leaves_ctrl_c_alone():
    from repository import load_script

    before = signal.getsignal(signal.SIGINT)
    load_script("experiments/parity.py", "parity_for_ctrl_c")  # imports fa_jax.runs.ctrl_c first
    assert signal.getsignal(signal.SIGINT) is before and not interrupt.installed()


def test_a_ctrl_c_during_a_checkpoint_save_lets_the_save_complete(handler, tmp_path, monkeypatch):
    ckpt = checkpoint.Checkpointer(tmp_path / "ck", {"rule": "bp"})
    save = ckpt._save

    def cut(*args):
        _ctrl_c()  # arrives while the save is being scheduled
        save(*args)

    monkeypatch.setattr(ckpt, "_save", cut)
    state = {"w": jnp.arange(6.0).reshape(2, 3)}
    with pytest.raises(KeyboardInterrupt), interrupt.guarding():
        ckpt.save(7, state, {"loss": jnp.ones((2, 1))})
    ckpt.close()
    assert checkpoint.latest_step(tmp_path / "ck") == 7
    assert not [p for p in (tmp_path / "ck").iterdir() if "tmp" in p.name]  # no half-written step


def test_guarded_turns_an_interrupt_into_one_line_and_exit_130(handler, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(interrupt, "_exit", lambda line: (_ for _ in ()).throw(SystemExit(line)))
    monkeypatch.setattr(sys, "argv", ["experiments/job.py", "--out", str(tmp_path)])
    lock.acquire(tmp_path)
    with pytest.raises(SystemExit) as stop, cli.guarded("job.py"):
        raise KeyboardInterrupt
    assert str(stop.value) == f"job.py: interrupted; {tmp_path} has no checkpoint yet; " \
                              f"python experiments/job.py --resume {tmp_path} starts it over"
    assert not (tmp_path / lock.NAME).exists()  # the lock is released
    assert interrupt.EXIT == 130


def _job(out, *extra):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "experiments" / "parity.py"), "--quick", "--steps", "40000", "--eval-every",
         "100", "--rules", "bp", "--out", str(out), "--no-progress", *extra], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"})


def _interrupted(job):
    job.send_signal(signal.SIGINT)
    out, err = job.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert job.returncode == 130, (job.returncode, err[-3000:])  # not 139: no crash in XLA's shutdown
    assert len(lines) == 1 and lines[0].startswith("parity.py: interrupted; "), err[-3000:]
    return out, lines[0]


def test_ctrl_c_during_the_imports_and_during_compilation(tmp_path):
    early = _job(tmp_path / "early")
    time.sleep(0.3)  # still importing jax
    _, line = _interrupted(early)
    assert line == "parity.py: interrupted; nothing was written" and not (tmp_path / "early").exists()

    compiling = _job(tmp_path / "compiling")
    header = compiling.stdout.readline()  # printed once the run directory is open, before the first compile
    assert "->" in header, header
    _, line = _interrupted(compiling)
    assert f"--resume {tmp_path / 'compiling'}" in line
    assert not (tmp_path / "compiling" / lock.NAME).exists()
    assert (tmp_path / "compiling" / "config.json").exists() and not (tmp_path / "compiling" / "summary.json").exists()


DROPPED = """
import signal, sys, time
sys.path.insert(0, {root!r})
from fa_jax import interrupt
interrupt.on_ctrl_c("t.py")

class Finalized:
    def __del__(self):  # the handler's KeyboardInterrupt is raised here, where Python drops it
        signal.raise_signal(signal.SIGINT)
        sum(range(1000))

with interrupt.guarding():
    try:
        Finalized()
        time.sleep(10)
        print("ran on")
    except KeyboardInterrupt:
        interrupt.stop("t.py", [])
"""


def test_a_ctrl_c_that_python_drops_in_a_finalizer_is_sent_again():
    """A Ctrl-C landing in a finalizer or a gc callback (XLA's) is dropped by Python ("Exception
    ignored"); the handler's unraisable hook sends it again, so the script still stops: exit 130."""
    code = DROPPED.format(root=str(Path(__file__).resolve().parents[2]))
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == interrupt.EXIT, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "" and p.stderr.strip() == "t.py: interrupted; nothing was written", p.stderr
    assert time.monotonic() - t < 8  # not after the 10 s sleep
