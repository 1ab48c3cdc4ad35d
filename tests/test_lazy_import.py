"""``import fa_jax`` loads nothing heavy; every API-tour name resolves on first use."""

import subprocess
import sys

import fa_jax as fj

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_import_loads_no_jax_and_every_name_resolves():
    code = ("import sys, fa_jax as fj; heavy = [m for m in ('jax', 'numpy', 'optax', 'flax', 'matplotlib', "
            "'sklearn', 'orbax') if m in sys.modules]; assert not heavy, heavy; "
            "[getattr(fj, n) for n in fj.__all__]; assert 'jax' in sys.modules and 'matplotlib' not in sys.modules")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]


def test_names_are_the_objects_of_their_modules():
    from fa_jax.rules.feedback_schemes import SCHEMES
    from fa_jax.training.sweep import sweep

    assert fj.sweep is sweep and fj.FEEDBACK_SCHEMES is SCHEMES and fj.init.__name__ == "fa_jax.models.init"
    assert set(fj.__all__) <= set(dir(fj))
    try:
        fj.no_such_name
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name resolved")


def test_bench_walls_measures_the_imports(tmp_path):
    out = tmp_path / "walls.json"
    p = subprocess.run([sys.executable, "benchmarks/bench_walls.py", "--jobs", "", "--repeats", "1", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = {r["what"]: r["wall_s"] for r in __import__("json").loads(out.read_text())["results"]}
    assert set(rows) == {"python", "import jax", "import fa_jax", "import fa_jax; fa_jax.sweep"}
    assert all(v > 0 for v in rows.values())
    bad = subprocess.run([sys.executable, "benchmarks/bench_walls.py", "--jobs", "nope"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown job 'nope'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
