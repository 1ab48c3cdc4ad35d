"""Spread a sweep's seeds over devices (``jax.sharding``) and over hosts (``jax.distributed``).

One process: the train state's leading (seed) axis is sharded over a 1-D ``Mesh`` named
``"seeds"`` of the local devices; the task's arrays are replicated. ``jit`` runs every
device's seeds in parallel with no communication (seeds are independent).

Data parallel within a seed (big models, few seeds): a 2-D mesh ``("seeds", "data")``; each
seed's parameters are replicated over its ``"data"`` row of devices and every training
batch is split over that row (:func:`shard_batch`); XLA sums the gradient over the row
(an all-reduce), so the update equals the one-device update up to float summation order.

Several processes (SLURM, or ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
``JAX_PROCESS_ID`` set by hand): every process calls :func:`maybe_initialize_distributed`,
takes its share of the seeds with :func:`local_seeds`, shards them over its own devices, and
writes its own metrics shard; at the end all wait for each other (:func:`sync_processes`) and
process 0 merges the shards (see ``fa_jax.runs.study``). Seeds never talk to each other, so no
cross-process collective runs: the processes meet only in the coordination service's
key-value store (in process 0).

A lost process: every process beats once a second in that store (a thread, :class:`_Beats`);
process 0 watches every other process and the others watch process 0. One silent for
``FA_JAX_DISTRIBUTED_TIMEOUT`` seconds (default 60), or one that ended with its own error
(:func:`abandon`), ends the others with one line on stderr, ``<script>: error: lost process 1
of 2 ...``, and exit code 2, instead of a hang or JAX's own abort (a C++ stack trace after its
heartbeat timeout, which is set longer than ours). If process 0 dies, the coordination
service dies with it and JAX itself ends the others at once, with its own message
(``Terminating process because the JAX distributed service detected fatal errors``).
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fa_jax.errors import InputError

if TYPE_CHECKING:
    from fa_jax.data.task import Task
    from fa_jax.training.state import TrainState


def seed_mesh(n_seeds: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over the largest number of ``devices`` (default: all) that divides ``n_seeds``."""
    devices = list(jax.devices() if devices is None else devices)
    n = max(d for d in range(1, len(devices) + 1) if n_seeds % d == 0)
    return Mesh(np.array(devices[:n]), ("seeds",))


def sweep_mesh(n_seeds: int, devices: Sequence[jax.Device] | None = None, data_parallel: int = 1) -> Mesh:
    """:func:`seed_mesh` for ``data_parallel == 1``; otherwise a 2-D ``("seeds", "data")`` mesh
    with ``data_parallel`` devices per seed group and as many seed groups (dividing ``n_seeds``)
    as the devices allow."""
    if data_parallel == 1:
        return seed_mesh(n_seeds, devices)
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) < data_parallel:
        raise InputError(f"data_parallel={data_parallel} needs at least that many devices; "
                         f"{len(devices)} available")
    g = max(d for d in range(1, len(devices) // data_parallel + 1) if n_seeds % d == 0)
    return Mesh(np.array(devices[:g * data_parallel]).reshape(g, data_parallel), ("seeds", "data"))


def shard_batch(mesh: Mesh | None) -> Callable[[jax.Array], jax.Array]:
    """``f(x)``: split a per-seed batch (leading axis: examples) over the mesh's ``"data"``
    axis, for use inside ``jax.vmap(..., spmd_axis_name="seeds")``; identity without one."""
    if mesh is None or "data" not in mesh.axis_names:
        return lambda x: x
    spec = NamedSharding(mesh, P("data"))
    return lambda x: jax.lax.with_sharding_constraint(x, spec)


def place(state: TrainState, task: Task, mesh: Mesh) -> tuple[TrainState, Task]:
    """Shard ``state`` on its leading axis over ``mesh`` and replicate ``task``."""
    if mesh.size == 1:
        return state, task
    seeds, rep = NamedSharding(mesh, P("seeds")), NamedSharding(mesh, P())
    return jax.device_put(state, seeds), jax.device_put(task, rep)


TIMEOUT_VAR = "FA_JAX_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0  # seconds of silence after which a process counts as lost
BEAT_S = 1.0  # seconds between two beats of a process
_KV = "fa_jax"  # prefix of fa_jax's keys in the coordination service's key-value store


def distributed_timeout() -> float:
    """Seconds of silence after which a process of a multi-process run counts as lost:
    ``FA_JAX_DISTRIBUTED_TIMEOUT`` (a number > 2), default 60."""
    raw = os.environ.get(TIMEOUT_VAR)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value > 2 * BEAT_S or math.isinf(value):
        raise InputError(f"{TIMEOUT_VAR} must be a number of seconds > {2 * BEAT_S:g}, got {raw!r}")
    return value


def maybe_initialize_distributed() -> bool:
    """Call ``jax.distributed.initialize()`` when launched as one of several processes.

    Recognizes JAX's variables (``JAX_COORDINATOR_ADDRESS`` with ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``, which this function reads: JAX itself reads only the address) and SLURM
    multi-task launches (``SLURM_NTASKS`` > 1), for which ``jax.distributed.initialize()``
    auto-detects everything. Then starts the beats that turn a lost process into a one-line
    error (module docstring; :func:`distributed_timeout`). JAX's preemption service is off:
    fa_jax never asks it, and it would swallow SIGTERM (``scancel``, ``timeout``).
    Returns True if it initialized.

    Timeouts passed to JAX: 300 s for all processes to connect (``initialization_timeout``),
    twice the lost-process timeout (at least JAX's 100 s) as JAX's own heartbeat timeout, and
    300 s for the processes to leave together at exit (``shutdown_timeout_seconds``: process 0
    merges and plots while the others wait).
    """
    global _beats
    env = os.environ
    if jax.distributed.is_initialized():
        return False
    if "JAX_COORDINATOR_ADDRESS" in env:
        try:
            n, pid = int(env["JAX_NUM_PROCESSES"]), int(env["JAX_PROCESS_ID"])
        except (KeyError, ValueError):
            raise InputError(f"JAX_COORDINATOR_ADDRESS={env['JAX_COORDINATOR_ADDRESS']!r} needs integer "
                             f"JAX_NUM_PROCESSES and JAX_PROCESS_ID, got {env.get('JAX_NUM_PROCESSES')!r} and "
                             f"{env.get('JAX_PROCESS_ID')!r}") from None
        if not 0 <= pid < n:
            raise InputError(f"JAX_PROCESS_ID must be in 0..{n - 1} (JAX_NUM_PROCESSES={n}), got {pid}")
        where = {"coordinator_address": env["JAX_COORDINATOR_ADDRESS"], "num_processes": n, "process_id": pid}
    elif int(env.get("SLURM_NTASKS", "1")) > 1:
        where = {}
    else:
        return False
    lost_after = distributed_timeout()
    jax.config.update("jax_enable_preemption_service", False)
    jax.distributed.initialize(**where, initialization_timeout=300,
                               heartbeat_timeout_seconds=max(100, math.ceil(2 * lost_after)),
                               shutdown_timeout_seconds=300)
    if _state().num_processes > 1:
        _beats = _Beats(lost_after)
        _beats.start()
    return True


def _state():
    """What ``jax.distributed.initialize`` set up (its client: the key-value store). JAX 0.10 has
    no public accessor; orbax reads the same object."""
    from jax._src import distributed  # noqa: PLC0415

    return distributed.global_state


def _client():
    return _state().client


def _get(key: str) -> str | None:
    """The value of ``key`` in the coordination service's store, None if unset (an error if the
    service is unreachable)."""
    try:
        return _client().key_value_try_get(key)
    except jax.errors.JaxRuntimeError as err:
        if "NOT_FOUND" in str(err):
            return None
        raise


def _fail(message: str) -> None:
    """End this process now: one line ``<script>: error: <message>`` on stderr, exit code 2.

    ``os._exit``, not an exception: the main thread may be inside a compiled computation, and a
    normal exit would wait in JAX's shutdown barrier for the lost process."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c") else "fa_jax"
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.write(2, f"{prog}: error: {message}\n".encode())
    os._exit(2)


def _stop_all(message: str) -> None:
    """From process 0: have every other process end with ``message`` (they read it within a
    beat), give them two beats to do so, then end this one with it."""
    try:
        _client().key_value_set(f"{_KV}/stop", message, allow_overwrite=True)
        if _state().num_processes > 2:  # with two, the other one is the lost one
            time.sleep(2.5 * BEAT_S)
    except Exception:  # noqa: BLE001 - the others will learn it from the coordinator's end
        pass
    _fail(message)


class _Beats(threading.Thread):
    """This process's beat (a counter under ``fa_jax/beat/<i>``; ``"exited"`` once it exits,
    ``"failed"`` if it ends with an error) and the watch over the others' (process 0 watches
    all, the others watch process 0)."""

    def __init__(self, lost_after: float):
        super().__init__(name="fa_jax-beats", daemon=True)
        self.lost_after = lost_after
        state = _state()
        self.client, self.pid, self.n = state.client, state.process_id, state.num_processes
        self.exiting = threading.Event()
        import atexit  # noqa: PLC0415

        atexit.register(self.exit)  # runs before jax's own exit handler (registered earlier)

    def exit(self):
        """Stop beating and say so (the others stop waiting for this process's beats)."""
        self.exiting.set()
        try:
            self.client.key_value_set(f"{_KV}/beat/{self.pid}", "exited", allow_overwrite=True)
        except Exception:  # noqa: BLE001 - the coordinator may be gone already
            pass

    def beats(self) -> dict:
        """{process: its last beat} of the processes this one watches."""
        if self.pid == 0:
            return {int(k.rsplit("/", 1)[1]): v for k, v in self.client.key_value_dir_get(f"{_KV}/beat/")}
        return {0: _get(f"{_KV}/beat/0")}

    def run(self):
        watched = range(1, self.n) if self.pid == 0 else [0]
        seen = {i: (None, time.monotonic()) for i in watched}  # last beat and when it changed
        for count in itertools.count():
            if self.exiting.is_set():
                return
            try:
                self.client.key_value_set(f"{_KV}/beat/{self.pid}", str(count), allow_overwrite=True)
                beats = self.beats()
                stop = None if self.pid == 0 else _get(f"{_KV}/stop")
            except Exception:  # noqa: BLE001 - the coordinator is gone: JAX's client ends this process
                return
            if stop and not self.exiting.is_set():
                _fail(f"process 0 ended the run: {stop}")
            now = time.monotonic()
            for i in watched:
                if beats.get(i) == "failed" and not self.exiting.is_set():
                    message = f"process {i} of {self.n} failed (see its own error); the run is incomplete"
                    (_stop_all if self.pid == 0 else _fail)(message)
                if beats.get(i) != seen[i][0]:
                    seen[i] = (beats.get(i), now)
                elif seen[i][0] != "exited" and now - seen[i][1] > self.lost_after and not self.exiting.is_set():
                    message = (f"lost process {i} of {self.n}: no sign of life for {self.lost_after:g} s (killed, "
                               f"crashed or cut off?); the run is incomplete ({TIMEOUT_VAR} sets the wait)")
                    (_stop_all if self.pid == 0 else _fail)(message)
            time.sleep(BEAT_S)


_beats: _Beats | None = None  # this process's, once maybe_initialize_distributed started them


def abandon() -> None:
    """In a multi-process run, this process is ending with an error it has printed: tell the
    others (they end within a beat or two, with one line each) and exit now with code 2,
    rather than wait in JAX's shutdown barrier for processes that go on. Nothing otherwise."""
    if _beats is None:
        return
    _beats.exiting.set()
    try:
        _beats.client.key_value_set(f"{_KV}/beat/{_beats.pid}", "failed", allow_overwrite=True)
        if _beats.pid == 0:  # the coordinator: give the others two beats to read it
            time.sleep(2.5 * BEAT_S)
    except Exception:  # noqa: BLE001
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(2)


_syncs = itertools.count()


def sync_processes(name: str) -> None:
    """Wait until every process of a multi-process run has called ``sync_processes(name)``
    (nothing in a single-process run). Every process makes the same calls in the same order.

    No deadline: the beats tell a lost process (module docstring). A process that exited
    before getting here ends this one (and the others) with a one-line error.
    """
    n = jax.process_count()
    if n == 1:
        return
    client, pid, k = _client(), jax.process_index(), next(_syncs)
    client.key_value_set(f"{_KV}/sync/{k}/{pid}", name)
    key_all = f"{_KV}/sync/{k}/all"
    while True:
        if pid == 0:  # process 0 counts the arrivals and tells the others
            arrived = {int(key.rsplit("/", 1)[1]) for key, _ in client.key_value_dir_get(f"{_KV}/sync/{k}/")
                       if key.rsplit("/", 1)[1].isdigit()}
            if len(arrived) == n:
                client.key_value_set(key_all, "1")
                return
            beats = {int(key.rsplit("/", 1)[1]): v for key, v in client.key_value_dir_get(f"{_KV}/beat/")}
            gone = [i for i in range(n) if i not in arrived and beats.get(i) == "exited"]
            if gone:
                _stop_all(f"process {gone[0]} of {n} exited before {name!r} (see its own error); "
                          f"the run is incomplete")
            time.sleep(0.2)
        else:
            try:
                client.blocking_key_value_get(key_all, 1000)
                return
            except jax.errors.JaxRuntimeError as err:
                if "DEADLINE_EXCEEDED" not in str(err):
                    raise
            if _get(f"{_KV}/beat/0") == "exited":
                _fail(f"process 0 of {n} exited before {name!r} (see its own error); the run is incomplete")


def local_seeds(seeds: list[int], process_index: int | None = None, process_count: int | None = None) -> list[int]:
    """This process's share of ``seeds`` (round-robin); all of them in a single-process run."""
    i = jax.process_index() if process_index is None else process_index
    n = jax.process_count() if process_count is None else process_count
    if n > len(seeds):
        raise InputError(f"{len(seeds)} seeds cannot be spread over {n} processes; use at least {n} seeds")
    return list(seeds)[i::n]
