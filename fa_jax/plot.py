"""Redraw every figure of a run directory from its files, without retraining.

    python -m fa_jax.plot RUN_DIR [--tensorboard]

:func:`fa_jax.runs.plots.redraw` reads ``metrics.jsonl`` (and ``config.json``'s ``task`` for titles,
``embedding.npz`` when present) and writes, with fixed names: ``curves.png`` (test accuracy;
one panel per model when the rows carry ``model``), ``loss.png`` (training loss), and with
diagnostics ``alignment.png`` (angle to the BP gradient per layer), ``signal_alignment.png``,
``weight_alignment.png``, ``grad_norms.png``, ``weight_norms.png``; ``embedding.png`` from
``embedding.npz``. Seeds whose rows are marked ``diverged`` are left out of every curve and
counted in its legend (``bp (3 of 4 seeds; 1 diverged)``). ``--tensorboard`` also writes
``tensorboard/``, TensorBoard event logs of the metrics (:func:`fa_jax.runs.tensorboard.write_events`;
needs ``pip install 'fa_jax[tensorboard]'``). A damaged file is one line naming it (and the
line of ``metrics.jsonl``), exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fa_jax.errors import InputError
from fa_jax.runs import cli, tensorboard
from fa_jax.runs.plots import redraw


@cli.guarded("fa_jax.plot")
def main(argv: Sequence[str] | None = None) -> int:
    p = cli.ArgParser(prog="python -m fa_jax.plot", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="a run directory (with metrics.jsonl)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write RUN_DIR/tensorboard/: TensorBoard event logs of metrics.jsonl, one run per "
                        "cell and seed plus the seeds' mean (replaces an earlier one; needs tensorboardX)")
    args = p.parse_args(argv)
    if args.tensorboard:
        tensorboard.require()  # tensorboardX installed: checked before anything is drawn
    try:
        written = redraw(args.run_dir)
        if args.tensorboard:
            written.append(tensorboard.write_events(args.run_dir))
    except OSError as err:  # not a run's failure (no "the run is incomplete"): the file and the reason
        raise InputError(f"{err.filename or args.run_dir}: {err.strerror or err} (errno {err.errno})") from None
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
