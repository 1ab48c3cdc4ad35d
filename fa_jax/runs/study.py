"""The study engine: one run directory, one checkpointed, vmapped :func:`fa_jax.sweep` per cell.

Every study and lecture experiment runs through it::

    Study.plan(cells, seeds=8, steps=2000)                       # every cell checked, nothing written yet
    study = Study.start(out, config, resume=False)               # config.json first
    for labels, model, task in cells:                            # e.g. {"model": "resnet20", "rule": "fa"}
        study.sweep(labels, model, task, rule=labels["rule"], seeds=8, steps=2000)
    study.finish(lambda s: {"by_rule": tables.summarize(s.rows, ["rule"])})   # summary.json last

What it writes: ``config.json`` (the resolved configuration and the environment; kept when
resuming), ``metrics.jsonl`` as each sweep finishes (one row per logged step and seed, carrying
the cell's labels), ``checkpoints/<cell>/`` (the whole train state, to resume a killed run),
whatever the ``finish`` hook draws (figures, tables), with ``tensorboard`` TensorBoard event logs of
the metrics (:mod:`fa_jax.runs.tensorboard`), and ``summary.json`` last, so a directory
with a summary is a complete run. Launched as several processes (``jax.distributed``), each
process trains its share of every cell's seeds and writes ``metrics.p<i>.jsonl``; process 0
merges them before the hook runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from fa_jax.analysis import representations
from fa_jax.errors import InputError
from fa_jax.runs import lock, rundir, tables
from fa_jax.runs import tensorboard as tb_events
from fa_jax.runs.plots import redraw
from fa_jax.runs.resume_checks import RESUMABLE, check_checkpointing, check_precision, check_resumable  # noqa: F401
from fa_jax.runs.tables import SOLVED
from fa_jax.training import sharding
from fa_jax.training.sweep import sweep as fj_sweep
from fa_jax.training.sweep_config import SweepConfig

if TYPE_CHECKING:
    import argparse

    from fa_jax.data.task import Task
    from fa_jax.models.contract import LayeredModel, Model
    from fa_jax.training.sweep_result import SweepResult


def process_seconds() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None where that cannot be read."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return max(time.time() - (boot + ticks / os.sysconf("SC_CLK_TCK")), 0.0)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def product(**axes: Iterable[Any]) -> list[dict]:
    """All combinations of the given axes, in order: ``product(n=[10, 20], k=[3])``."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[a] for a in names))]


def cell_name(cell: dict) -> str:
    """A grid cell's checkpoint folder and progress label: ``method=dfa n=20 k=3 width=128``."""
    return " ".join(f"{k}={v}" for k, v in cell.items())


def steps_to_threshold(eval_steps: Sequence[int] | np.ndarray, acc: np.ndarray,
                       threshold: float = SOLVED) -> list[int | None]:
    """Per seed, the first logged step whose accuracy reaches ``threshold``, or None.

    eval_steps: (E,); acc: (S, E), NaN-safe (a NaN never reaches the threshold).
    """
    acc = np.nan_to_num(np.asarray(acc, float), nan=-1.0)
    hit = acc >= threshold
    return [int(eval_steps[np.argmax(h)]) if h.any() else None for h in hit]


@dataclasses.dataclass
class Study:
    """A run directory being filled: the sweeps done so far and their rows.

    results: {cell name: SweepResult}; rows: one summary row per cell and seed (the cell's
    labels, the seed's own labels, :meth:`fa_jax.SweepResult.rows` and ``steps_to_95``);
    metric_rows: one row per cell, seed and logged step. checkpoint_every: steps between
    checkpoints (None: about once a minute; 0: no checkpoints); keep_checkpoints: the newest
    K kept per sweep; tensorboard: :meth:`finish` writes ``tensorboard/`` (event logs of the metrics).
    """

    out: Path
    resume: bool = False
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    progress: bool = True
    tensorboard: bool = False
    results: dict = dataclasses.field(default_factory=dict)
    rows: list = dataclasses.field(default_factory=list)
    metric_rows: list = dataclasses.field(default_factory=list)
    label_keys: list = dataclasses.field(default_factory=list)
    clock: dict = dataclasses.field(default_factory=lambda: {"opened": time.perf_counter(), "sweeps_s": 0.0,
                                                             "finish_s": 0.0})

    @staticmethod
    def plan(cells: Iterable[dict[str, Any]], **common: Any) -> list[SweepConfig]:
        """Check every cell of a study before its run directory opens: :meth:`fa_jax.SweepConfig.build`
        for each cell, a dict of :func:`fa_jax.sweep` arguments (``model``, ``task``, ``rule``, ...)
        completing ``common`` (the memory estimate included). Compiles nothing, writes nothing; the
        first bad cell is a one-line InputError. Returns the cells' configs, in order."""
        configs = []
        for cell in cells:
            kw = {**common, **cell}
            model, task = kw.pop("model"), kw.pop("task")
            for k in ("progress", "desc", "name", "seed_labels"):
                kw.pop(k, None)
            configs.append(SweepConfig.build(model, task, **kw))
        return configs

    @classmethod
    def start(cls, out: str | os.PathLike[str], config: dict, *, resume: bool = False,
              checkpoint_every: int | None = None, keep_checkpoints: int = 2, progress: bool = True,
              tensorboard: bool = False) -> Study:
        """Begin (or, with ``resume``, continue) a study in the folder ``out``.

        Every check runs before anything in ``out`` changes. Refuses (one-line ValueError) an
        unwritable folder, one another live run holds (``run.lock``, :mod:`fa_jax.runs.lock`),
        one holding a finished run or checkpoints unless resuming, and a resume whose ``config``
        differs from the recorded ``config.json`` (other than where it goes and how it
        checkpoints: :data:`RESUMABLE`). Writes ``config.json`` (``config`` plus the environment)
        unless resuming; a resumed run keeps ``metrics.jsonl`` and ``summary.json`` until
        :meth:`finish` replaces them.

        Args:
            out: the run directory (created if missing).
            config: the resolved configuration ``config.json`` records.
            resume: continue the run in ``out`` from its checkpoints (default False).
            checkpoint_every: steps between checkpoints (None: about once a minute; 0: no checkpoints).
            keep_checkpoints: the newest K kept per sweep, >= 1 (default 2).
            progress: show a progress bar per sweep (default True).
            tensorboard: :meth:`finish` also writes ``tensorboard/``, TensorBoard event logs of
                ``metrics.jsonl`` (default False; needs tensorboardX, checked here).
        """
        check_checkpointing(checkpoint_every, keep_checkpoints)
        if tensorboard:
            tb_events.require()
        out = rundir.prepare(out)
        if resume:
            check_resumable(out, config)
        study = cls(out=out, resume=resume, checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints,
                    progress=progress, tensorboard=tensorboard)
        if jax.process_index() == 0:
            lock.acquire(out)
            try:
                rundir.start(out, resume)  # refuses to overwrite a run
                if not (resume and (out / "config.json").is_file()):
                    rundir.write_config(out, config)
            except BaseException:
                lock.release(out)
                raise
        if not resume:
            study.metrics_path.unlink(missing_ok=True)
        return study

    @classmethod
    def from_args(cls, args: argparse.Namespace, job: str, config: dict | None = None, *,
                  eval_every: int | None = None) -> Study:
        """:meth:`start` from a script's parsed flags (``--out``, ``--resume``, ``--checkpoint-every``,
        ``--keep-checkpoints``, ``--no-progress``, ``--tensorboard``: :func:`fa_jax.runs.cli.add_run_flags`); the
        default folder is ``runs/<job>-<time>``. config: what ``config.json`` records (default:
        every flag); ``job`` and ``out`` are added. eval_every: the run's evaluation interval,
        which ``--checkpoint-every`` must be a multiple of (default ``args.eval_every`` if any)."""
        every = args.checkpoint_every
        check_checkpointing(every, args.keep_checkpoints, eval_every or getattr(args, "eval_every", None))
        if getattr(args, "tensorboard", False):
            tb_events.require()  # tensorboardX installed: checked before --out opens
        out = rundir.prepare(args.out or rundir.default_dir(job))
        config = {"job": job, **(vars(args) if config is None else config), "out": str(out)}
        return cls.start(out, config, resume=args.resume is not None, checkpoint_every=every,
                         keep_checkpoints=args.keep_checkpoints, progress=not getattr(args, "no_progress", False),
                         tensorboard=getattr(args, "tensorboard", False))

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl``, or this process's ``metrics.p<i>.jsonl`` when several run."""
        n_proc = jax.process_count()
        return self.out / ("metrics.jsonl" if n_proc == 1 else f"metrics.p{jax.process_index()}.jsonl")

    @property
    def _rows_path(self) -> Path:
        """Where sweeps append their rows: :attr:`metrics_path`, or (resuming) a hidden file that
        :meth:`finish` moves there, so the old rows stay until the resumed run is complete."""
        p = self.metrics_path
        return p.with_name(f".{p.name}.resumed") if self.resume else p

    def sweep(self, labels: dict, model: Model, task: Task, *, name: str | None = None,
              seed_labels: Callable[[int], dict] | None = None, **sweep_kw: Any) -> SweepResult:
        """Run one cell: :func:`fa_jax.sweep` ``(model, task, **sweep_kw)``, checkpointed in
        ``checkpoints/<name>`` and resumed from there; returns its SweepResult.

        Its rows go to :attr:`rows` and :attr:`metric_rows`, and are appended to ``metrics.jsonl``.

        Args:
            labels: the settings that tell this cell from the others (e.g. ``{"rule": "dfa"}``);
                they are written into every row.
            model, task: as for :func:`fa_jax.sweep`.
            name: the cell's checkpoint folder and progress-bar label (default the label values
                joined by ``-``).
            seed_labels: ``seed_labels(seed) -> dict``, labels of one seed (e.g. its learning rate
                when the seeds of a sweep carry a learning-rate grid).
            **sweep_kw: the rest of :func:`fa_jax.sweep`'s arguments (seeds, steps, lr, ...).
        """
        name = name or "-".join(str(v) for v in labels.values())
        if name in self.results or name + f".p{jax.process_index()}" in self.results:
            raise InputError(f"sweep {name!r} already ran in this study (a name repeated in a list?); "
                             f"each cell runs once")
        self.label_keys += [k for k in labels if k not in self.label_keys]
        if jax.process_count() > 1:  # several hosts: each trains its share of the seeds
            seeds = sweep_kw.pop("seeds", 8)
            sweep_kw["seeds"] = sharding.local_seeds(list(range(seeds)) if isinstance(seeds, int) else list(seeds))
            name += f".p{jax.process_index()}"
        check_checkpointing(self.checkpoint_every, self.keep_checkpoints, sweep_kw.get("eval_every", 100),
                            f"the evaluation interval of sweep {name!r}")
        ckpt = rundir.checkpointing(self.out, name, self.checkpoint_every or None, self.checkpoint_every != 0,
                                    self.keep_checkpoints)
        sweep_kw.setdefault("progress", self.progress)
        sweep_kw.setdefault("desc", name)
        t0 = time.perf_counter()
        res = fj_sweep(model, task, **ckpt, **sweep_kw)
        self.clock["sweeps_s"] += time.perf_counter() - t0
        if res.resumed_from >= res.eval_steps[-1]:
            print(f"{name}: restored from its checkpoint at step {res.resumed_from}; nothing retrained")
        if self.resume and not self.results:
            self._rows_path.write_text("")  # the first sweep got past its checkpoint's checks
        extra = seed_labels or (lambda seed: {})
        steps95 = steps_to_threshold(res.eval_steps, res.train_acc)
        self.rows += [{**labels, **extra(r["seed"]), **r, "steps_to_95": None if r["diverged"] else s95}
                      for r, s95 in zip(res.rows(), steps95)]
        metric_rows = [{**labels, **extra(m["seed"]), **m} for m in res.metric_rows()]
        self.metric_rows += metric_rows
        rundir.append_jsonl(self._rows_path, metric_rows)
        self.results[name] = res
        return res

    def embed(self, model: LayeredModel, task: Task, layer: int, method: str = "pca") -> Path:
        """``embedding.npz``: 2-D maps (``"pca"`` or ``"tsne"``) of hidden layer ``layer`` (1-based) on
        the test inputs, before and after training, for the first seed of every sweep so far
        (:func:`fa_jax.analysis.representations.representation_maps`); drawn by ``redraw``."""
        maps, labels = representations.representation_maps(model, self.results, task, layer, method)
        path = self.out / "embedding.npz"
        representations.save_maps(path, maps, labels, layer, method)
        return path

    @property
    def seconds(self) -> float:
        """Compile + run seconds of every sweep so far."""
        return sum(r.compile_s + r.run_s for r in self.results.values())

    def timing(self) -> dict:
        """{cell name: {"compile_s", "init_compile_s", "run_s"}} of every sweep so far (a resumed
        sweep: with the seconds of the part its checkpoint holds); ``compile_s`` is the training
        program's, ``init_compile_s`` the parameter and feedback draws' (~0 when compiled before)."""
        return {n: {"compile_s": round(r.compile_s, 3), "init_compile_s": round(r.init_compile_s, 3),
                    "run_s": round(r.run_s, 3)} for n, r in self.results.items()}

    def compile_report(self) -> str:
        """One line: each sweep's compile seconds, training program + draws, e.g. ``compile (s,
        training + draws): bp 2.1 + 0.6, fa 2.3 + 0.2``."""
        return "compile (s, training + draws): " + ", ".join(
            f"{n} {r.compile_s:.1f} + {r.init_compile_s:.1f}" for n, r in self.results.items())

    def time_report(self) -> str:
        """Where this process's wall time went, in parts that add up to it, e.g. ``time: 27.3 s wall
        = 6.1 before the study (imports, checks, memory estimate) + 18.0 in 3 sweeps (compile 8.1
        + draws 0.9, run 8.1, checks and checkpoints 0.9) + 0.4 between sweeps + 2.8 figures and
        tables + 0.0 since``. With resumed sweeps, their compile + run (earlier sessions included) is given
        instead of the split."""
        now = time.perf_counter()
        wall = process_seconds()
        before = max(wall - (now - self.clock["opened"]), 0.0) if wall is not None else 0.0
        wall = before + (now - self.clock["opened"])
        sweeps, fin = self.clock["sweeps_s"], self.clock["finish_s"]
        done = self.clock.get("finished", now)
        comp = sum(r.compile_s for r in self.results.values())
        draws = sum(r.init_compile_s for r in self.results.values())
        run = sum(r.run_s for r in self.results.values())
        fresh = not any(r.resumed_from for r in self.results.values())
        inner = (f"compile {comp:.1f} + draws {draws:.1f}, run {run:.1f}, checks and checkpoints "
                 f"{max(sweeps - comp - draws - run, 0.0):.1f}"
                 if fresh else f"resumed; their compile + run, earlier sessions included: {comp + run:.1f}")
        between = (done - self.clock["opened"]) - sweeps - fin
        return (f"time: {wall:.1f} s wall = {before:.1f} before the study (imports, checks, memory estimate) + "
                f"{sweeps:.1f} in {len(self.results)} sweeps ({inner}) + {between:.1f} between sweeps + "
                f"{fin:.1f} figures and tables + {now - done:.1f} since")

    def finish(self, write: Callable[[Study], dict] | None = None) -> dict | None:
        """End the study: ``write(study) -> dict`` draws figures and tables into ``out`` and returns
        the summary's fields; ``summary.json`` (``results``: the rows, ``timing``, those fields) is
        written last. Returns the summary on process 0, None on the others (process 0 reports)."""
        if self.resume and self._rows_path.exists():
            self._rows_path.replace(self.metrics_path)
        n_proc = jax.process_count()
        if n_proc > 1:
            pid = jax.process_index()
            rundir.write_json(self.out / f"summary_rows.p{pid}.json", self.rows)
            sharding.sync_processes("fa_jax_study_done")  # however long the others take; a lost one ends this
            if pid != 0:
                return None
            self.rows, self.metric_rows = merge_shards(self.out, n_proc, self.label_keys)
        t0 = time.perf_counter()
        try:
            fields = {} if write is None else write(self)
        except OSError as err:  # e.g. a figure on a full disk: name the run directory at least
            raise rundir.named(err, self.out) from None
        if self.tensorboard:  # from the finished metrics.jsonl, before the summary marks the run complete
            tb_events.write_events(self.out)
        self.clock["finish_s"] = time.perf_counter() - t0
        self.clock["finished"] = time.perf_counter()
        summary = {"results": self.rows, **fields, "timing": self.timing()}
        rundir.write_json(self.out / "summary.json", summary)
        lock.release(self.out)
        return summary


def compare_rules(study: Study, model: Model, task: Task, rules: Sequence[str], *, title: str | None = None,
                  embed_layer: int | None = None, embed_method: str = "pca",
                  **sweep_kw: Any) -> tuple[dict[str, SweepResult], list[dict], str]:
    """The main job's study: every rule of ``rules`` trained on ``task`` (one vmapped sweep each) into
    the open ``study`` (:meth:`Study.start`), which it finishes.

    Args:
        study: where the run goes (its folder, checkpointing and progress settings).
        model, task: as for :func:`fa_jax.sweep`.
        rules: rule names, e.g. ``["bp", "fa", "dfa"]``.
        title: the figures' title (default the task's name).
        embed_layer, embed_method: a hidden layer (1-based) to map in 2-D (``"pca"`` or ``"tsne"``)
            before and after training (:meth:`Study.embed`); None for no map.
        **sweep_kw: the rest of :func:`fa_jax.sweep`'s arguments (seeds, steps, lr, feedback, ...).

    Writes the figures of :func:`fa_jax.plot.redraw` and a summary with ``by_rule``. Returns
    ``(results {rule: SweepResult}, summary rows, markdown table)``; the table is ``""`` on the
    non-zero processes of a multi-host run.
    """
    if embed_layer is not None:
        representations.check_layer(model, embed_layer)
        representations.check_method(embed_method)
    for rule in rules:
        study.sweep({"rule": rule}, model, task, rule=rule, desc=f"{rule:>4}", **sweep_kw)

    def write(s: Study) -> dict:
        if embed_layer is not None:
            s.embed(model, task, embed_layer, embed_method)
        redraw(s.out, title=title or task.name)
        return {"task": task.name, "by_rule": tables.summarize(s.rows, "rule")}

    summary = study.finish(write)
    return study.results, study.rows, "" if summary is None else tables.table(summary["by_rule"])


def merge_shards(out: str | os.PathLike[str], n_proc: int,
                 keys: Sequence[str] = ("rule",)) -> tuple[list[dict], list[dict]]:
    """Merge per-process ``metrics.p{i}.jsonl`` / ``summary_rows.p{i}.json`` into ``metrics.jsonl``.

    Returns ``(summary_rows, metric_rows)`` sorted by the cells' order of appearance (a cell: its
    values of the label ``keys``), then seed, then step.
    """
    out = Path(out)
    rows, metric_rows = [], []
    for i in range(n_proc):
        rows += json.loads((out / f"summary_rows.p{i}.json").read_text())
        metric_rows += rundir.read_jsonl(out / f"metrics.p{i}.jsonl")
    cell = lambda r: tuple(r.get(k) for k in keys)  # noqa: E731
    order = {c: i for i, c in enumerate(dict.fromkeys(cell(r) for r in rows))}
    rows.sort(key=lambda r: (order[cell(r)], r["seed"]))
    metric_rows.sort(key=lambda r: (order[cell(r)], r["seed"], r["step"]))
    (out / "metrics.jsonl").write_text("")
    rundir.append_jsonl(out / "metrics.jsonl", metric_rows)
    return rows, metric_rows
