"""Nothing lost, nothing mixed: one run per directory (run.lock), a refused command changes no
byte, a folder left by a refused run is reusable, a finished run is never overwritten, files get
the user's normal permissions, repeated cells are refused, a resumed finished run keeps its
times, and the printed times add up to the wall."""

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from error_check import one_line_exit
from repository import ROOT, load_script

import fa_jax as fj
from fa_jax.runs import lock
from fa_jax.runs.study import Study, compare_rules

TINY = ["--quick", "--rules", "bp", "--seeds", "2", "--steps", "100", "--eval-every", "50", "--no-progress"]


@pytest.fixture(scope="module")
def parity():
    return load_script("experiments/parity.py", "safety_parity")


def snapshot(folder) -> dict:
    """{relative path: bytes} of every file and {relative path: None} of every folder."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = None
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def test_a_refused_resume_changes_no_byte(parity, tmp_path, capsys):
    out = tmp_path / "run"
    assert parity.main([*TINY, "--out", str(out)]) == 0
    before = snapshot(out)
    assert "summary.json" in before and "run.lock" not in before
    err = one_line_exit(capsys, parity.main, ["--resume", str(out), "--seeds", "4"])
    assert "recorded with other settings: seeds=4 (recorded 2)" in err
    assert snapshot(out) == before
    # an edited config.json: the checkpoints refuse it, still before anything is changed
    cfg = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**cfg, "lr": 0.002}))
    edited = snapshot(out)
    assert "from a different configuration" in one_line_exit(capsys, parity.main, ["--resume", str(out)])
    assert snapshot(out) == edited


def test_resuming_a_finished_run_retrains_nothing_and_keeps_its_times(parity, tmp_path, capsys):
    out = tmp_path / "run"
    assert parity.main([*TINY, "--out", str(out)]) == 0
    first = json.loads((out / "summary.json").read_text())
    capsys.readouterr()
    assert parity.main(["--resume", str(out)]) == 0
    assert "bp: restored from its checkpoint at step 100; nothing retrained" in capsys.readouterr().out
    again = json.loads((out / "summary.json").read_text())
    spent = first["timing"]["bp"]["compile_s"]  # the seconds the run took, not the restore's
    for a, b in zip(first["results"], again["results"]):
        assert spent <= b["wall_s"] <= a["wall_s"]  # without the last checkpoint's write, saved before it
        assert {k: v for k, v in a.items() if k != "wall_s"} == {k: v for k, v in b.items() if k != "wall_s"}
    assert again["timing"]["bp"]["compile_s"] == first["timing"]["bp"]["compile_s"]


def test_a_folder_left_by_a_refused_run_is_reusable_but_a_finished_run_is_kept(parity, tmp_path, capsys):
    out = tmp_path / "run"
    one_line_exit(capsys, parity.main, [*TINY, "--init", "uniform(-1)", "--out", str(out)])
    assert not out.exists()  # refused before the folder was made
    # a folder as an interrupted start leaves it: config.json and an empty checkpoint folder
    (out / "checkpoints" / "bp").mkdir(parents=True)
    (out / "config.json").write_text("{}")
    assert parity.main([*TINY, "--out", str(out)]) == 0
    done = tmp_path / "done"
    assert parity.main([*TINY, "--checkpoint-every", "0", "--out", str(done)]) == 0
    before = snapshot(done)
    err = one_line_exit(capsys, parity.main, [*TINY, "--checkpoint-every", "0", "--out", str(done)])
    assert "already holds a finished run (summary.json)" in err
    assert snapshot(done) == before


def test_files_get_the_users_permissions(parity, tmp_path):
    old = os.umask(0o002)
    try:
        assert parity.main([*TINY, "--out", str(tmp_path / "run")]) == 0
    finally:
        os.umask(old)
    for name in ("config.json", "summary.json", "metrics.jsonl"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o664, name


def test_a_live_lock_refuses_a_stale_one_is_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = lock._start_time(sleeper.pid)
        (out / lock.NAME).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "start": start,
                                                 "taken": "then", "argv": ["parity.py", "--lr", "1"], "token": "x"}))
        with pytest.raises(ValueError, match=rf"in use by another run \(pid {sleeper.pid} on .*parity.py --lr 1\)"):
            Study.start(out, {"job": "t"})
    finally:
        sleeper.kill()
        sleeper.wait()
    # the same pid, now dead: stale, taken over
    study = Study.start(out, {"job": "t"})
    assert json.loads((out / lock.NAME).read_text())["pid"] == os.getpid()
    assert Study.start(out, {"job": "t"}).out == study.out  # this process holds it: taken again
    study.finish()
    assert not (out / lock.NAME).exists()
    # another host: cannot be checked from here, so refused, with the way out
    other = tmp_path / "other"
    other.mkdir()
    (other / lock.NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "token": "y"}))
    with pytest.raises(ValueError, match=r"on elsewhere.*delete .*run\.lock"):
        Study.start(other, {"job": "t"})
    # a pid reused by a later process (another start time) is stale too
    (other / lock.NAME).write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                               "start": "1", "token": "z"}))
    Study.start(other, {"job": "t"}).finish()


def test_repeated_cells_are_refused(tmp_path):
    study = Study.start(tmp_path / "run", {"job": "t"}, checkpoint_every=0, progress=False)
    with pytest.raises(ValueError, match=r"sweep 'bp' already ran in this study"):
        compare_rules(study, fj.mlp([4, 8, 1]), fj.data.parity(4, 2), ["bp", "bp"], seeds=1, steps=10,
                      eval_every=10)


def _report(text: str) -> dict:
    m = re.search(r"time: ([\d.]+) s wall = ([\d.]+) before the study .* \+ ([\d.]+) in \d+ sweeps \(compile "
                  r"([\d.]+) \+ draws ([\d.]+), run ([\d.]+), checks and checkpoints ([\d.]+)\) \+ ([\d.]+) between sweeps \+ ([\d.]+) "
                  r"figures and tables \+ ([\d.]+) since", text)
    assert m, text
    return dict(zip(("wall", "before", "sweeps", "compile", "draws", "run", "init", "between", "figures", "since"),
                    map(float, m.groups())))


def test_two_runs_into_one_folder_at_once_one_is_refused_and_times_add_up(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "experiments" / "parity.py"), *TINY, "--rules", "bp,fa", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd + ["--lr", lr], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for lr in ("0.001", "0.003")]
    results = [(*p.communicate(timeout=300), p.returncode, time.perf_counter() - t0, lr)
               for p, lr in zip(procs, ("0.001", "0.003"))]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    winner = next(r for r in results if r[2] == 0)
    loser = next(r for r in results if r[2] == 2)
    assert re.fullmatch(r"parity\.py: error: --out '.*' is in use by another run \(pid \d+ on .*\); wait for it "
                        r"or choose another --out \(if that run is dead, delete .*run\.lock\)\n", loser[1]), loser[1]
    assert json.loads((out / "config.json").read_text())["lr"] == float(winner[4])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2  # 2 rules x 2 seeds x 2 evaluations: one run's rows only
    assert not (out / lock.NAME).exists()
    t = _report(winner[0])
    parts = t["before"] + t["sweeps"] + t["between"] + t["figures"] + t["since"]
    assert parts == pytest.approx(t["wall"], abs=0.3)
    assert t["compile"] + t["draws"] + t["run"] + t["init"] == pytest.approx(t["sweeps"], abs=0.3)
    assert t["wall"] <= winner[3] + 0.5 and t["wall"] >= winner[3] - 5.0  # the process's whole life, nearly


def test_out_through_a_symlink_loop_or_to_nowhere_is_one_line(parity, tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "dang").symlink_to(tmp_path / "missing")
    for out in ("a", "a/sub"):
        err = one_line_exit(capsys, parity.main, [*TINY, "--out", str(tmp_path / out)])
        assert err.endswith("is (or is inside) a symbolic link loop\n"), err
    err = one_line_exit(capsys, parity.main, [*TINY, "--out", str(tmp_path / "dang")])
    assert f"is a symbolic link to '{tmp_path / 'missing'}', which does not exist" in err


def test_an_unreadable_lock_is_stale_once_it_is_old(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / lock.NAME).write_text("")  # a run that died between creating and writing it ... or one doing it now
    with pytest.raises(ValueError, match="in use by another run"):
        Study.start(out, {"job": "t"})
    os.utime(out / lock.NAME, (time.time() - 60, time.time() - 60))
    Study.start(out, {"job": "t"}).finish()
    (out / "summary.json").unlink()
    (out / lock.NAME).mkdir()  # not even a file
    os.utime(out / lock.NAME, (time.time() - 60, time.time() - 60))
    Study.start(out, {"job": "t"}).finish()
