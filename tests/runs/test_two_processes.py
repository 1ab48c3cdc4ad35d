"""The main job launched as two (or three) real processes on this machine (``jax.distributed`` over
localhost, CPU, a coordinator in process 0), as docs/scale.md tells a person to do by hand:
the merged run equals a one-process run of the same seeds, and a killed process ends the
other with a clear error in bounded time instead of a hang.

No cross-process collective runs (seeds are independent; the processes meet only in the
coordination service's key-value store), so nothing here needs gloo or MPI.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
from repository import ROOT

from fa_jax.runs import rundir

SCRIPT = ROOT / "experiments" / "parity.py"
JOB = ["--quick", "--seeds", "4", "--steps", "100", "--eval-every", "50", "--no-progress"]
HARD_TIMEOUT_S = 240  # no process of this file lives longer, whatever happens
LOST_AFTER_S = 8  # FA_JAX_DISTRIBUTED_TIMEOUT of the kill tests
BOUND_S = 60  # a survivor must be gone this long after the kill


def _env(**extra) -> dict:
    """This environment (conftest's XLA_FLAGS included) without any launcher's variables, CPU
    only, importing fa_jax from the checkout under test."""
    launcher = ("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_", "OMPI_", "FA_JAX_DISTRIBUTED")
    env = {k: v for k, v in os.environ.items() if not k.startswith(launcher)}
    return {**env, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, env):
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@contextmanager
def _launch(out, *args, n: int = 2, reference=None, **env):
    """``n`` processes of the job on one coordinator (127.0.0.1, a free port), all writing to
    ``out`` (plus, with ``reference=<dir>``, a one-process run there): yields the list of
    Popen (the reference last); every one still running at the end is killed."""
    port = _free_port()
    dist = _env(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}",
                JAX_NUM_PROCESSES=str(n), **env)
    procs = [_start([*JOB, *args, "--out", str(out)], {**dist, "JAX_PROCESS_ID": str(i)}) for i in range(n)]
    if reference is not None:
        procs.append(_start([*JOB, *args, "--out", str(reference)], _env()))
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


def _finish(p, deadline: float):
    """(stdout, stderr) of ``p`` once it ends, killing it at ``deadline`` (time.monotonic)."""
    try:
        return p.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"process still running after its hard timeout; stderr:\n{err[-3000:]}") from None


def _assert_rows_close(a, b):
    """Same rows, same labels, ints and flags; floats equal to 1e-6 (relative).

    The two runs do not compile the same program: a process vmaps 2 seeds, the reference 4.
    XLA's CPU backend computes each seed's slice the same way at both widths here (the rows
    were equal bit for bit when this was written), but only a batch of one is known to take
    another path (its batch axis is squeezed away; it then differs in the last bit), so the
    numbers get a tight tolerance rather than a claim of bitwise equality."""
    assert len(a) == len(b) and [sorted(r) for r in a] == [sorted(r) for r in b]
    for x, y in zip(a, b):
        exact = {k for k, v in x.items() if not isinstance(v, float)}
        assert {k: x[k] for k in exact} == {k: y[k] for k in exact}, (x, y)
        np.testing.assert_allclose([x[k] for k in sorted(set(x) - exact)], [y[k] for k in sorted(set(x) - exact)],
                                   rtol=1e-6, atol=1e-7, err_msg=str((x, y)))


def test_two_processes_merge_into_the_one_process_run(tmp_path):
    out, one = tmp_path / "two", tmp_path / "one"
    deadline = time.monotonic() + HARD_TIMEOUT_S
    with _launch(out, reference=one) as procs:  # the reference runs beside the pair
        done = [_finish(p, deadline) for p in procs]
    for p, (_, err) in zip(procs, done):
        assert p.returncode == 0, err[-3000:]
    assert "| rule |" in done[0][0] and "| rule |" not in done[1][0]  # process 0 reports, 1 does not

    config = json.loads((out / "config.json").read_text())
    assert config["environment"]["process_count"] == 2
    for i, seeds in enumerate(([0, 2], [1, 3])):  # each process trained its own share, round-robin
        shard = rundir.read_jsonl(out / f"metrics.p{i}.jsonl")
        assert sorted({r["seed"] for r in shard}) == seeds
        assert sorted({r["rule"] for r in shard}) == ["bp", "dfa", "fa"]

    merged, alone = (json.loads((d / "summary.json").read_text()) for d in (out, one))
    strip = lambda rows, keys: [{k: v for k, v in r.items() if k not in keys} for r in rows]  # noqa: E731
    _assert_rows_close(strip(merged["results"], {"wall_s"}), strip(alone["results"], {"wall_s"}))
    _assert_rows_close(strip(merged["by_rule"], {"seconds"}), strip(alone["by_rule"], {"seconds"}))
    metrics = rundir.read_jsonl(out / "metrics.jsonl")
    _assert_rows_close(metrics, rundir.read_jsonl(one / "metrics.jsonl"))
    assert len(metrics) == 3 * 4 * 2  # rules x seeds x evaluations, none twice
    assert (out / "curves.png").is_file()


def _kill_when_trained(out, victim, procs, deadline):
    """SIGKILL process ``victim`` once it has trained its first sweep (its metrics shard exists);
    the time of the kill."""
    while not (out / f"metrics.p{victim}.jsonl").exists():
        assert procs[victim].poll() is None, procs[victim].communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the victim never finished a sweep"
        time.sleep(0.05)
    procs[victim].send_signal(signal.SIGKILL)
    return time.monotonic()


def test_killing_process_1_ends_the_others_with_one_line(tmp_path):
    """Three processes: process 0 finds process 1 silent and ends itself and process 2, each
    with one line on stderr and exit code 2 (not JAX's abort, not a hang)."""
    out = tmp_path / "run"
    deadline = time.monotonic() + HARD_TIMEOUT_S
    with _launch(out, "--rules", "bp,dfa", n=3, FA_JAX_DISTRIBUTED_TIMEOUT=str(LOST_AFTER_S)) as procs:
        killed = _kill_when_trained(out, 1, procs, deadline)
        ends = {i: _finish(procs[i], min(deadline, killed + BOUND_S + 30))[1] for i in (0, 2)}
        took = time.monotonic() - killed
    lost = "lost process 1 of 3: no sign of life for 8 s (killed, crashed or cut off?); the run is incomplete"
    for i, start in ((0, "parity.py: error: "), (2, "parity.py: error: process 0 ended the run: ")):
        err = ends[i]
        assert procs[i].returncode == 2, err[-3000:]
        assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err, err[-3000:]
        assert err.startswith(start + lost), err
    assert took < BOUND_S, took
    assert not (out / "summary.json").exists()  # the run never looks complete


def test_killing_process_0_ends_process_1_at_once(tmp_path):
    """The coordination service lives in process 0: JAX's client in process 1 sees it go and
    aborts (SIGABRT) with JAX's own message and a C++ stack trace, which fa_jax cannot
    shorten; it is bounded and names the cause."""
    out = tmp_path / "run"
    deadline = time.monotonic() + HARD_TIMEOUT_S
    with _launch(out, "--rules", "bp,dfa", FA_JAX_DISTRIBUTED_TIMEOUT=str(LOST_AFTER_S)) as procs:
        killed = _kill_when_trained(out, 0, procs, deadline)
        _, err = _finish(procs[1], min(deadline, killed + BOUND_S + 30))
        took = time.monotonic() - killed
    assert procs[1].returncode != 0 and took < BOUND_S, (procs[1].returncode, took)
    assert "JAX distributed service detected fatal errors" in err, err[-3000:]
    assert not (out / "summary.json").exists()


def test_an_error_in_one_process_ends_the_other_with_one_line(tmp_path):
    """Process 1 cannot write its metrics shard (a folder is in the way): it prints its own
    error and tells process 0, which ends within a beat or two; one line and code 2 each."""
    out = tmp_path / "run"
    (out / "metrics.p1.jsonl").mkdir(parents=True)
    deadline = time.monotonic() + HARD_TIMEOUT_S
    with _launch(out, "--rules", "bp,dfa", FA_JAX_DISTRIBUTED_TIMEOUT=str(LOST_AFTER_S)) as procs:
        ends = [_finish(p, deadline)[1] for p in procs]
    for p, err in zip(procs, ends):
        assert p.returncode == 2, err[-3000:]
        assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err, err[-3000:]
    assert ends[1].startswith("parity.py: error: ") and "metrics.p1.jsonl" in ends[1], ends[1]
    assert ends[0] == "parity.py: error: process 1 of 2 failed (see its own error); the run is incomplete\n"
