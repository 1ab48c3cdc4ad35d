"""BP, FA, DFA, KP and uSF on a small transformer language model and on a GRU, over seeds, with alignment per block.

    python experiments/sequence_rules.py                 # lm, recall, modadd x transformer, gru x 5 rules x 3 seeds (~25 min, 2 CPU cores)
    python experiments/sequence_rules.py --quick         # tiny models, few steps (a smoke test; the tests use it)
    python experiments/sequence_rules.py --tasks lm --models transformer --rules bp,dfa --points micro
    python experiments/sequence_rules.py --error-at last_block   # DFA's error at the last block, not the logits

Tasks (fa_jax.data): lm, next-character prediction on the pydoc text every CPython ships
(char_lm, windows of --context characters; metric: validation bits per character, lower is
better); recall, associative recall of the value stored with a queried key (--recall-pairs
pairs; metric: test accuracy on held-out sequences); modadd, (a + b) mod --modulus on a fixed
--train-fraction of the pairs (metric: accuracy on the other pairs). Models
(fa_jax.wrap.sequence_models): transformer (a pre-norm decoder, --d-model, --n-heads,
--n-blocks), gru and elman (--d-hidden); every model maps the task's tokens to per-token logits.

--points matters only to the DFA family (Rule.family "dfa": dfa, sdfa, drtp): there the
transformer runs once per variant, labelled transformer-macro (one DFA point per block, at its
output) and transformer-micro (three per block: after attention, the MLP's hidden activation,
the block output); every other rule trains the transformer once, labelled transformer (its
points are identities outside the DFA family). --error-at picks where the DFA family's error is
taken: the logits, or the last block's output (Launay et al. 2020's choice; drtp sends the
target, not an error, and cannot take it there).

Writes <out>/config.json, metrics.jsonl, summary.json, curves_<task>.png (the metric vs step,
mean ± std over seeds, one line per model/rule), with --diagnostics (the default) alignment.md
(the final angle between each block's update and BP's, the mean over the block's kernels; the
per-point signal alignment) and alignment.png (the per-block angles on the lm task, or the
first task run), and with --samples > 0 and the lm task samples.md (text written by the bp- and
dfa-trained models, seed 0, greedy and at temperature 0.8). Prints a table per task (task |
model | params | rule | metric mean ± std | worst seed | diverged | tokens/s | vs bp | seconds;
tokens/s: the training tokens seeds x steps x batch size x T per second of the compiled run,
compile excluded, its evaluations, diagnostics and checkpoint saves included; vs bp: against bp
on the same task and model).
"""

from fa_jax.runs import ctrl_c  # noqa: F401, I001  (first: Ctrl-C ends the script in one line, exit 130)
import re
import sys

import jax
import numpy as np

import fa_jax as fj
from fa_jax.analysis.generate import generate
from fa_jax.errors import InputError
from fa_jax.models.contract import n_params
from fa_jax.runs import cli, rundir, tables
from fa_jax.runs.block_alignment import alignment_figure, alignment_tables
from fa_jax.runs.study import Study
from fa_jax.wrap.sequence_models import SEQUENCE_MODELS, language_model
from fa_jax.wrap.transformer import ERROR_AT, POINTS

TASKS = ("lm", "recall", "modadd")
# the run's defaults, in one place (parser() and experiments/configs/sequence_rules.py spell them out)
DEFAULTS = {"tasks": list(TASKS), "models": ["transformer", "gru"], "rules": ["bp", "fa", "dfa", "kp", "usf"],
            "points": list(POINTS), "error_at": "logits", "seeds": 3, "steps": None, "batch_size": None,
            "eval_every": 100, "optimizer": "adamw", "lr": 1e-3, "weight_decay": None, "d_model": 64, "n_heads": 4, "n_blocks": 2,
            "d_hidden": 128, "context": 64, "recall_pairs": 4, "recall_keys": 8, "recall_values": 8,
            "modulus": 31, "train_fraction": 0.5, "diagnostics": True, "samples": 200}
QUICK = {"seeds": 2, "steps": 30, "eval_every": 15, "batch_size": 16, "d_model": 16, "n_heads": 2, "n_blocks": 1,
         "d_hidden": 16, "context": 16, "recall_pairs": 3, "modulus": 7, "samples": 40}
# each task's training where --steps, --batch-size, --weight-decay are not given (None): modadd generalizes
# only with strong weight decay (Power et al. 2022; AdamW's decoupled decay)
TASK_TRAINING = {"lm": {"steps": 1000, "batch_size": 32, "weight_decay": 0.0},
                 "recall": {"steps": 1500, "batch_size": 64, "weight_decay": 0.0},
                 "modadd": {"steps": 2000, "batch_size": 64, "weight_decay": 1.0}}
# task: (summary and header name of its metric, lower is better)
METRICS = {"lm": ("val bits/char", True), "recall": ("test acc", False), "modadd": ("test acc", False)}
SAMPLE_RULES = ("bp", "dfa")  # samples.md: text of the models these rules trained
TEMPERATURE = 0.8  # samples.md's sampled text (key fixed: SAMPLE_KEY)
SAMPLE_KEY = 0


def parser():
    d = DEFAULTS
    p = cli.ArgParser(prog="sequence_rules.py", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=cli.csv(), default=d["tasks"], help=f"comma-separated, from {', '.join(TASKS)}")
    p.add_argument("--models", type=cli.csv(), default=d["models"],
                   help=f"comma-separated, from {', '.join(SEQUENCE_MODELS)}")
    p.add_argument("--rules", type=cli.rule_list(), default=d["rules"],
                   help="comma-separated: bp and rules of the FA or DFA family (fa, dfa, kp, usf, frsf, brsf, sdfa, "
                        "drtp, wm)")
    p.add_argument("--points", type=cli.csv(), default=d["points"],
                   help=f"comma-separated, from {', '.join(POINTS)}: the transformer's DFA points; the DFA family "
                        f"runs once per variant (transformer-macro, transformer-micro), other rules once")
    p.add_argument("--error-at", default=d["error_at"],
                   help=f"one of {', '.join(ERROR_AT)}: where the DFA family takes the transformer's error")
    per_task = ", ".join(f"{t} {v['steps']} / {v['batch_size']} / {v['weight_decay']:g}"
                         for t, v in TASK_TRAINING.items())
    cli.add_training_flags(p, seeds=d["seeds"], steps=d["steps"], batch_size=d["batch_size"],
                           eval_every=d["eval_every"], optimizer=d["optimizer"], lr=d["lr"],
                           per_task=f"per task, steps / batch size / weight decay: {per_task}")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"],
                   help="adamw's decoupled weight decay (default: per task, as above, with --optimizer adamw; "
                        "given, it is passed to any optimizer)")
    p.add_argument("--d-model", type=int, default=d["d_model"], help="the transformer's width")
    p.add_argument("--n-heads", type=int, default=d["n_heads"], help="attention heads (dividing --d-model)")
    p.add_argument("--n-blocks", type=int, default=d["n_blocks"], help="transformer blocks")
    p.add_argument("--d-hidden", type=int, default=d["d_hidden"], help="the GRU's and Elman RNN's state size")
    p.add_argument("--context", type=int, default=d["context"], help="characters per lm window")
    p.add_argument("--recall-pairs", type=int, default=d["recall_pairs"], help="key-value pairs per recall sequence")
    p.add_argument("--recall-keys", type=int, default=d["recall_keys"], help="recall key tokens")
    p.add_argument("--recall-values", type=int, default=d["recall_values"], help="recall value tokens")
    p.add_argument("--modulus", type=int, default=d["modulus"], help="modadd's p: (a + b) mod p")
    p.add_argument("--train-fraction", type=float, default=d["train_fraction"],
                   help="modadd's share of the p * p pairs that trains")
    cli.add_feedback_flags(p)
    p.add_argument("--diagnostics", action="store_true", default=d["diagnostics"],
                   help="record the alignment with BP per kernel and DFA point (alignment.md, alignment.png; "
                        "the default)")
    p.add_argument("--no-diagnostics", dest="diagnostics", action="store_false", default=d["diagnostics"],
                   help="do not record it")
    p.add_argument("--samples", type=int, default=d["samples"],
                   help="characters of text per sampled lm model in samples.md (0: none)")
    p.add_argument("--quick", action="store_true", help="tiny models and few steps for a smoke test")
    cli.add_run_flags(p, "sequence_rules")
    return p


def file_name(label: str) -> str:
    """``label`` as a file or folder name (rule specs keep letters, digits, ``.``, ``-``, ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def make_task(name, args):
    """The fa_jax.data task of ``name`` with this run's sizes."""
    if name == "lm":
        return fj.data.char_lm(args.context)
    if name == "recall":
        return fj.data.associative_recall(args.recall_pairs, args.recall_keys, args.recall_values)
    return fj.data.modular_addition(args.modulus, args.train_fraction)


def training(args, task: str) -> dict:
    """The sweep's ``steps``, ``batch_size`` and ``optimizer_hyper`` on ``task``: the flags where given,
    else :data:`TASK_TRAINING` (its weight decay only with adamw)."""
    own = TASK_TRAINING[task]
    wd = args.weight_decay
    if wd is None and args.optimizer == "adamw":
        wd = own["weight_decay"]
    return {"steps": own["steps"] if args.steps is None else args.steps,
            "batch_size": own["batch_size"] if args.batch_size is None else args.batch_size,
            "optimizer_hyper": {} if wd is None else {"weight_decay": wd}}


def variants(arch, rules, points) -> list[tuple]:
    """The cells of one model: ``(label, points, rule)``; the transformer splits by points for the DFA family."""
    out = []
    for r in rules:
        if arch == "transformer" and fj.rules.get(r).family == "dfa":
            out += [(f"transformer-{pt}", pt, r) for pt in points]
        else:
            out.append((arch, "macro", r))
    return out


def model_options(arch, args, points):
    if arch == "transformer":
        return {"d_model": args.d_model, "n_heads": args.n_heads, "n_blocks": args.n_blocks, "points": points,
                "error_at": args.error_at}
    return {"d_hidden": args.d_hidden}


def check_args(args) -> None:
    """One-line ValueErrors for bad flags (no data loaded, nothing traced)."""
    cli.check_known(args.tasks, list(TASKS), "task")
    cli.check_known(args.models, list(SEQUENCE_MODELS), "model")
    cli.check_known(args.points, list(POINTS), "--points value")
    if args.error_at not in ERROR_AT:
        raise InputError(f"--error-at must be one of {', '.join(ERROR_AT)}, got {args.error_at!r}")
    for r in args.rules:
        rule = fj.rules.get(r)
        if rule.name != "bp" and rule.family not in ("fa", "dfa"):
            raise InputError(f"--rules: rule {r!r} does not run on these sequence models; use bp or a rule of the "
                             f"FA or DFA family (fa, dfa, kp, usf, frsf, brsf, sdfa, drtp, wm)")
        if rule.needs_targets and args.error_at == "last_block" and "transformer" in args.models:
            raise InputError(f"--rules {r} with --error-at last_block: {r} sends the target, not an error, to the "
                             f"DFA points, so it cannot take the error at the last block; use --error-at logits")
    for t in args.tasks:
        tr = training(args, t)
        cli.check_run_sizes({"seeds": args.seeds, "eval_every": args.eval_every, "steps": tr["steps"],
                             "batch_size": tr["batch_size"]})
    for flag in ("d_model", "n_heads", "n_blocks", "d_hidden", "context", "recall_pairs", "recall_keys",
                 "recall_values"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.d_model % args.n_heads:
        raise InputError(f"--n-heads {args.n_heads} does not divide --d-model {args.d_model}: each head has "
                         f"d_model / n_heads features")
    if args.recall_pairs > args.recall_keys:
        raise InputError(f"--recall-pairs {args.recall_pairs} > --recall-keys {args.recall_keys}: the keys of a "
                         f"sequence are distinct")
    if args.modulus < 2:
        raise InputError(f"--modulus must be >= 2, got {args.modulus}")
    if not 0 < args.train_fraction < 1:
        raise InputError(f"--train-fraction must be in (0, 1), got {args.train_fraction}")
    if args.samples < 0:
        raise InputError(f"--samples must be >= 0 (0: none), got {args.samples}")
    cli.feedback_options(args)


def build(args):
    """({task name: task}, [cell dicts], {(task, label): model}); every check runs here, before anything compiles.

    A cell: ``{"task", "model" (label), "arch", "rule"}``."""
    check_args(args)
    tasks = {t: make_task(t, args) for t in args.tasks}
    cells, models = [], {}
    for t, task in tasks.items():
        for arch in args.models:
            for label, points, rule in variants(arch, args.rules, args.points):
                if (t, label) not in models:
                    try:
                        models[t, label] = language_model(arch, task.n_out, task.n_in,
                                                          **model_options(arch, args, points))
                    except InputError as err:
                        raise InputError(f"model {label!r} on {t}: {err}") from None
                cells.append({"task": t, "model": label, "arch": arch, "rule": rule})
    feedback = cli.feedback_options(args)
    Study.plan(({"model": models[c["task"], c["model"]], "task": tasks[c["task"]], "rule": c["rule"],
                 **training(args, c["task"])} for c in cells),
               **sweep_kw(args, feedback))  # every cell checked as its sweep will be, before --out opens
    return tasks, cells, models


def sweep_kw(args, feedback) -> dict:
    """The :func:`fa_jax.sweep` arguments every cell shares (its model, rule and :func:`training` aside)."""
    return {"seeds": args.seeds, "optimizer": args.optimizer, "lr": args.lr, "feedback": feedback,
            "eval_every": args.eval_every, "diagnostics": args.diagnostics}


def cell_name(c) -> str:
    return f"{c['task']}-{c['model']}-{file_name(c['rule'])}"


# -- the summary ---------------------------------------------------------------------------------

def final_metric(task_name, res) -> np.ndarray:
    """(S,) the cell's metric at the last evaluation per seed (bits/char or accuracy); NaN where diverged."""
    v = fj.data.bits_per_char(res.test_loss[:, -1]) if task_name == "lm" else res.test_acc[:, -1]
    v = np.asarray(v, float)
    return np.where(res.diverged | ~np.isfinite(v), np.nan, v)


def _f(v):
    return None if v is None or not np.isfinite(v) else float(v)


def summarize(cells, results, models, tasks, args) -> list[dict]:
    """One row per cell: the metric's mean, std and worst seed, diverged seeds, tokens/s and its ratio to bp's."""
    rows = []
    for c in cells:
        res = results[cell_name(c)]
        name, lower = METRICS[c["task"]]
        v = final_metric(c["task"], res)
        ok = v[np.isfinite(v)]
        t = tasks[c["task"]].n_in
        tr = training(args, c["task"])
        tokens = len(res.seeds) * tr["steps"] * tr["batch_size"] * t
        rows.append({**{k: c[k] for k in ("task", "model", "arch", "rule")},
                     "params": n_params(models[c["task"], c["model"]]), "metric": name,
                     "lower_is_better": lower, "seeds": len(res.seeds), "diverged": int(res.diverged.sum()),
                     "mean": _f(ok.mean()) if ok.size else None, "std": _f(ok.std()) if ok.size else None,
                     "worst": _f(ok.max() if lower else ok.min()) if ok.size else None,
                     "per_seed": [_f(x) for x in v], "T": t,
                     "tokens_per_s": _f(tokens / res.run_s) if res.run_s > 0 else None,
                     "seconds": round(res.compile_s + res.run_s, 3), "compile_s": round(res.compile_s, 3),
                     "run_s": round(res.run_s, 3)})
    for r in rows:
        bp = next((b for b in rows if (b["task"], b["arch"], b["rule"]) == (r["task"], r["arch"], "bp")), None)
        ok = bp is not None and bp["tokens_per_s"] and r["tokens_per_s"]
        r["tokens_per_s_vs_bp"] = r["tokens_per_s"] / bp["tokens_per_s"] if ok else None
    return rows


def speed_lines(rows) -> list[str]:
    """Per model: each rule's tokens/s relative to bp's, the mean over the tasks."""
    out = []
    for arch in dict.fromkeys(r["arch"] for r in rows):
        parts = []
        for label, rule in dict.fromkeys((r["model"], r["rule"]) for r in rows if r["arch"] == arch):
            vs = [r["tokens_per_s_vs_bp"] for r in rows if (r["model"], r["rule"]) == (label, rule)
                  and r["tokens_per_s_vs_bp"] is not None]
            if rule != "bp" and vs:
                parts.append(f"{rule}{'' if label == arch else ' (' + label.split('-', 1)[1] + ')'} "
                             f"{np.mean(vs):.2f}x")
        tasks = sorted({r["task"] for r in rows if r["arch"] == arch})
        out.append(f"{arch}: tokens/s vs bp (mean over {', '.join(tasks)}): " + (", ".join(parts) or "no bp to compare"))
    return out


def _num(v, spec):
    return "—" if v is None else format(v, spec)


def task_table(rows, task) -> str:
    name, lower = METRICS[task]
    spec = ".3f"
    cols = ("task", "model", "params", "rule",
            (f"{name} (mean ± std)", lambda s: "—" if s["mean"] is None else f"{s['mean']:{spec}} ± {s['std']:{spec}}"),
            ("worst seed", lambda s: _num(s["worst"], spec)),
            ("diverged", lambda s: f"{s['diverged']}/{s['seeds']}"),
            ("tokens/s", lambda s: _num(s["tokens_per_s"], ",.0f")),
            ("vs bp", lambda s: "—" if s["tokens_per_s_vs_bp"] is None else f"{s['tokens_per_s_vs_bp']:.2f}x"),
            ("seconds", lambda s: f"{s['seconds']:.1f}"))
    better = "lower" if lower else "higher"
    return f"### {task}: {name} ({better} is better)\n\n" + tables.table([r for r in rows if r["task"] == task], cols)


# -- samples -------------------------------------------------------------------------------------

def samples_text(cells, results, models, task, n_chars, summary_rows) -> str:
    """samples.md: seed 0's text from the bp- and dfa-trained lm models, greedy and at TEMPERATURE."""
    prompt = np.asarray(task.x_test[0])
    text = fj.data.text.decode(prompt)
    parts = [f"Prompt (the first {len(prompt)} characters of the validation text):\n\n```\n{text}\n```"]
    for c in cells:
        if c["task"] != "lm" or c["rule"] not in SAMPLE_RULES:
            continue
        res = results[cell_name(c)]
        model = models["lm", c["model"]]
        params = jax.tree.map(lambda a: a[0], res.state.params)
        s = next(r for r in summary_rows if (r["task"], r["model"], r["rule"]) == ("lm", c["model"], c["rule"]))
        bpc = "diverged" if s["per_seed"][0] is None else f"{s['per_seed'][0]:.3f} val bits/char"
        parts.append(f"## {c['model']} / {c['rule']} (seed {res.seeds[0]}: {bpc})")
        for title, kw in (("greedy", {}), (f"temperature {TEMPERATURE}",
                                           {"key": jax.random.key(SAMPLE_KEY), "temperature": TEMPERATURE})):
            ids = generate(model, params, prompt, n_chars, **kw)
            parts.append(f"### {title}\n\n```\n{fj.data.text.decode(ids)}\n```")
    return "\n\n".join(parts) + "\n"


# -- the run -------------------------------------------------------------------------------------

@cli.guarded("sequence_rules.py")
def main(argv=None):
    args = parser().parse_args(argv)
    if args.quick:
        cli.apply_defaults(args, QUICK)
    tasks, cells, models = build(args)
    feedback = cli.feedback_options(args)
    config = {**vars(args),
              "task_shapes": {t: {"T": task.n_in, "vocab": task.n_out, "n_test": int(task.x_test.shape[0])}
                              for t, task in tasks.items()},
              "wrapped": {f"{t}/{label}": repr(m) for (t, label), m in models.items()},
              "dfa_points": {f"{t}/{label}": [[p, list(s)] for p, s in m.points] for (t, label), m in models.items()}}
    if "lm" in tasks:
        config["corpus"] = fj.data.text.corpus_info()
    study = Study.from_args(args, "sequence_rules", config)
    steps = ", ".join(f"{t} {training(args, t)['steps']}" for t in tasks)
    print(f"tasks {', '.join(tasks)}: {args.seeds} seeds x steps ({steps}), models "
          f"{', '.join(dict.fromkeys(c['model'] for c in cells))}, rules {', '.join(args.rules)} -> {study.out}")
    for c in cells:
        study.sweep({"task": c["task"], "model": c["model"], "rule": c["rule"]}, models[c["task"], c["model"]],
                    tasks[c["task"]], name=cell_name(c), desc=f"{c['task']}/{c['model']}/{c['rule']}",
                    rule=c["rule"], **sweep_kw(args, feedback), **training(args, c["task"]))
    summary = study.finish(lambda s: write_outputs(s, tasks, cells, models, args))
    rows = summary["by_task_model_rule"]
    for t in tasks:
        print(task_table(rows, t) + "\n")
    if args.diagnostics:
        print((study.out / "alignment.md").read_text())
    print("\n".join(speed_lines(rows)))
    print(study.time_report())
    print(f"wrote {study.out}/" + ", ".join(["config.json", "metrics.jsonl", "summary.json", *summary["files"]]))
    return 0


def curves_figure(metric_rows, task, path):
    """``task``'s metric vs step, a panel per architecture, a line per rule (and DFA points variant)."""
    mine = []
    for r in metric_rows:
        if r["task"] == task:
            arch, _, points = r["model"].partition("-")
            extra = {"bpc": None if r.get("test_loss") is None else fj.data.bits_per_char(r["test_loss"])}
            mine.append(dict(r, arch=arch, line=r["rule"] + (f" ({points})" if points else ""), **extra))
    metric, ylabel = ("bpc", "validation bits/char") if task == "lm" else ("test_acc", METRICS[task][0])
    return fj.plots.curves(mine, path, metric, ylabel, title=task, panel="arch", line="line")


def write_outputs(study, tasks, cells, models, args) -> dict:
    """The figures and tables of the run (module doc); the summary's fields."""
    rows = summarize(cells, study.results, models, tasks, args)
    files = []
    for t in tasks:
        curves_figure(study.metric_rows, t, study.out / f"curves_{t}.png")
        files.append(f"curves_{t}.png")
    if args.diagnostics:
        rundir.write_text(study.out / "alignment.md", alignment_tables(study.metric_rows, cells, models))
        first = "lm" if "lm" in tasks else next(iter(tasks))
        alignment_figure(study.metric_rows, cells, models, first, study.out / "alignment.png")
        files += ["alignment.md", "alignment.png"]
    sampled = [c for c in cells if c["task"] == "lm" and c["rule"] in SAMPLE_RULES]
    if args.samples and sampled:
        rundir.write_text(study.out / "samples.md", samples_text(cells, study.results, models, tasks["lm"],
                                                                 args.samples, rows))
        files.append("samples.md")
    return {"tasks": list(tasks), "metrics": {t: METRICS[t][0] for t in tasks}, "by_task_model_rule": rows,
            "files": files}


if __name__ == "__main__":
    sys.exit(main())
