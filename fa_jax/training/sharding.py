"""Spread a sweep's seeds over devices (``jax.sharding``) and over hosts (``jax.distributed``).

One process: the train state's leading (seed) axis is sharded over a 1-D ``Mesh`` named
``"seeds"`` of the local devices; the task's arrays are replicated. ``jit`` runs every
device's seeds in parallel with no communication (seeds are independent).

Data parallel within a seed (big models, few seeds): a 2-D mesh ``("seeds", "data")``; each
seed's parameters are replicated over its ``"data"`` row of devices and every training
batch is split over that row (:func:`shard_batch`); XLA sums the gradient over the row
(an all-reduce), so the update equals the one-device update up to float summation order.

Several hosts (SLURM or any launcher that sets JAX's variables): every process calls
:func:`maybe_initialize_distributed`, takes its share of the seeds with
:func:`local_seeds`, shards them over its own devices, and writes its own metrics shard;
process 0 merges the shards (see ``fa_jax.runs.experiment``). Seeds never talk to each other,
so no cross-host collective runs during training.
"""

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def seed_mesh(n_seeds: int, devices=None) -> Mesh:
    """A 1-D mesh over the largest number of ``devices`` (default: all) that divides ``n_seeds``."""
    devices = list(jax.devices() if devices is None else devices)
    n = max(d for d in range(1, len(devices) + 1) if n_seeds % d == 0)
    return Mesh(np.array(devices[:n]), ("seeds",))


def sweep_mesh(n_seeds: int, devices=None, data_parallel: int = 1) -> Mesh:
    """:func:`seed_mesh` for ``data_parallel == 1``; otherwise a 2-D ``("seeds", "data")`` mesh
    with ``data_parallel`` devices per seed group and as many seed groups (dividing ``n_seeds``)
    as the devices allow."""
    if data_parallel == 1:
        return seed_mesh(n_seeds, devices)
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) < data_parallel:
        raise ValueError(f"data_parallel={data_parallel} needs at least that many devices; "
                         f"{len(devices)} available")
    g = max(d for d in range(1, len(devices) // data_parallel + 1) if n_seeds % d == 0)
    return Mesh(np.array(devices[:g * data_parallel]).reshape(g, data_parallel), ("seeds", "data"))


def shard_batch(mesh: Mesh | None):
    """``f(x)``: split a per-seed batch (leading axis: examples) over the mesh's ``"data"``
    axis, for use inside ``jax.vmap(..., spmd_axis_name="seeds")``; identity without one."""
    if mesh is None or "data" not in mesh.axis_names:
        return lambda x: x
    spec = NamedSharding(mesh, P("data"))
    return lambda x: jax.lax.with_sharding_constraint(x, spec)


def place(state, task, mesh: Mesh):
    """Shard ``state`` on its leading axis over ``mesh`` and replicate ``task``."""
    if mesh.size == 1:
        return state, task
    seeds, rep = NamedSharding(mesh, P("seeds")), NamedSharding(mesh, P())
    return jax.device_put(state, seeds), jax.device_put(task, rep)


def maybe_initialize_distributed() -> bool:
    """Call ``jax.distributed.initialize()`` when launched as one of several processes.

    Recognizes JAX's own variables (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
    ``JAX_PROCESS_ID``) and SLURM multi-task launches (``SLURM_NTASKS`` > 1), for which
    ``jax.distributed.initialize()`` auto-detects everything. Returns True if it initialized.
    """
    multi = "JAX_COORDINATOR_ADDRESS" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) > 1
    if multi and not jax.distributed.is_initialized():
        jax.distributed.initialize()
        return True
    return False


def local_seeds(seeds: list[int], process_index: int | None = None, process_count: int | None = None) -> list[int]:
    """This process's share of ``seeds`` (round-robin); all of them in a single-process run."""
    i = jax.process_index() if process_index is None else process_index
    n = jax.process_count() if process_count is None else process_count
    if n > len(seeds):
        raise ValueError(f"{len(seeds)} seeds cannot be spread over {n} processes; use at least {n} seeds")
    return list(seeds)[i::n]
