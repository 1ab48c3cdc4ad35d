"""``python -m fa_jax.plot`` on a damaged run directory: one line naming the file (and the line of
metrics.jsonl), exit code 2; a torn last line, NaN values and an unknown string label still plot."""

import json

import pytest
from error_check import one_line_exit

from fa_jax import plot


def row(seed=0, step=10, **kw):
    return {"rule": "bp", "seed": seed, "step": step, "diverged": False, "loss": 0.5, "test_acc": 0.9, **kw}


GOOD = [row(s, t) for s in (0, 1) for t in (10, 20)]


def lines(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


@pytest.mark.parametrize("metrics,config,match", [
    (lines(*GOOD), "{not json", "config.json: not JSON (Expecting property name enclosed in double quotes at line 1"),
    (lines(*GOOD), "[1, 2]", "config.json: not a JSON object but list"),
    (lines(*GOOD), '{"task": 5}', "config.json: task is 5, not a string"),
    (lines(*GOOD), b"\xff\xfe", "config.json: not UTF-8 text"),
    (lines(*GOOD[:2], row(test_acc="abc")), None, "metrics.jsonl line 3: test_acc is 'abc', not a number"),
    (lines(GOOD[0], row(test_acc=True)), None, "metrics.jsonl line 2: test_acc is True, not a number"),
    (lines(GOOD[0], {k: v for k, v in GOOD[1].items() if k != "seed"}), None,
     "metrics.jsonl line 2: no 'seed' (every row needs rule, seed, step)"),
    (lines({k: v for k, v in GOOD[0].items() if k != "rule"}), None, "metrics.jsonl line 1: no 'rule'"),
    (lines(GOOD[0], "{oops", *GOOD[1:]), None, "metrics.jsonl line 2: not JSON"),
    (lines(GOOD[0], "", "[1, 2]"), None, "metrics.jsonl line 3: not a JSON object but list"),
    (lines(row(step="x")), None, "metrics.jsonl line 1: step is 'x', not an integer >= 0"),
    (lines(row(step=-10)), None, "metrics.jsonl line 1: step is -10, not an integer >= 0"),
    (lines(row(seed=1.5)), None, "metrics.jsonl line 1: seed is 1.5, not an integer"),
    (lines(row(diverged="yes")), None, "metrics.jsonl line 1: diverged is 'yes', not true or false"),
    (lines(row(grad_alignment_deg=3.0)), None,
     "metrics.jsonl line 1: grad_alignment_deg is 3.0, not a list of numbers (one per layer)"),
    (lines(row(grad_alignment_deg=[1.0, "a"])), None, "metrics.jsonl line 1: grad_alignment_deg[1] is 'a', not a number"),
    (lines(row(objective={"a": 1})), None, "metrics.jsonl line 1: objective is {'a': 1}, not a number"),
    (lines({"rule": ["bp"], "seed": 0, "step": 1}), None, "metrics.jsonl line 1: rule is ['bp'], not a label"),
    (lines({"model": "mlp", **GOOD[0]}, GOOD[1]), None,
     "metrics.jsonl line 2: no 'model' (every row needs rule, seed, step, model)"),
    (lines(GOOD[0]).encode() + b'{"rule": "\xff"}\n', None, "metrics.jsonl line 2: not UTF-8 text"),
    ("", None, "metrics.jsonl' has no rows"),
    (None, "{}", "is not a run directory (no metrics.jsonl)"),
])
def test_damaged_file_is_one_line_naming_it(tmp_path, capsys, metrics, config, match):
    for name, text in (("metrics.jsonl", metrics), ("config.json", config)):
        if text is not None:
            (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    err = one_line_exit(capsys, plot.main, [str(tmp_path)])
    assert match in err and "Traceback" not in err, err
    if match.startswith("metrics.jsonl line"):
        assert f"{tmp_path / 'metrics.jsonl'} line" in err


def test_damaged_embedding_and_unwritable_figure(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text(lines(*GOOD))
    (tmp_path / "embedding.npz").write_bytes(b"not a zip file")
    err = one_line_exit(capsys, plot.main, [str(tmp_path)])
    assert f"{tmp_path / 'embedding.npz'}: not a readable embedding file" in err
    (tmp_path / "embedding.npz").unlink()
    (tmp_path / "curves.png").mkdir()  # a figure that cannot be written: the file and the reason, not "the run"
    err = one_line_exit(capsys, plot.main, [str(tmp_path)])
    assert f"{tmp_path / 'curves.png'}: Is a directory (errno 21)" in err and "run is incomplete" not in err


def test_torn_last_line_nan_and_string_labels_still_plot(tmp_path, capsys):
    rows = [*GOOD, row(2, 10, test_acc=float("nan"), scheme="sign"), row(2, 20, loss=None, scheme="sign")]
    (tmp_path / "metrics.jsonl").write_text(lines(*rows) + '{"rule": "bp", "se')
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        assert plot.main([str(tmp_path)]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 5000 and (tmp_path / "loss.png").is_file()
