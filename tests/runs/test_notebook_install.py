"""Every notebook in colab/ opens with the same install cell (written by colab/sync_notebooks.py): outside
Colab it does nothing; on Colab it pip-installs ``git+FA_JAX_URL`` unless fa_jax is importable, and with
FA_JAX_URL unset it prints one line instead of installing."""

import io
import json
import os
import re
import subprocess
import sys
import types
from contextlib import redirect_stdout

import pytest
from repository import ROOT, load_script

NAMES = ("alignment", "flax_models", "parity_study")
URL_LINE = re.compile(r'^FA_JAX_URL = "[^"]*"', flags=re.MULTILINE)


def code_cells(path):
    """Sources of the code cells of the .ipynb at ``path``, in order."""
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def install_cell(name):
    """The first code cell of ``colab/<name>.ipynb``; it must be the install cell (it sets FA_JAX_URL)."""
    first = code_cells(ROOT / "colab" / f"{name}.ipynb")[0]
    assert URL_LINE.search(first), f"{name}.ipynb: the first code cell sets no FA_JAX_URL (no install cell)"
    return first


def with_url(source, url):
    """``source`` with its FA_JAX_URL line set to ``url``, as a user edits it."""
    out, n = URL_LINE.subn(lambda m: f"FA_JAX_URL = {json.dumps(url)}", source)
    assert n == 1, "the install cell must set FA_JAX_URL on exactly one line"
    return out


@pytest.fixture
def pip_calls(monkeypatch):
    """Every subprocess the cell starts, recorded instead of run (argv lists)."""
    calls = []

    def record(args, *a, **k):
        calls.append(list(args))
        return subprocess.CompletedProcess(args, 0)

    for fn in ("run", "call", "check_call", "check_output", "Popen"):
        monkeypatch.setattr(subprocess, fn, record)
    monkeypatch.setattr(os, "system", record)
    return calls


def run_cell(source):
    """Execute ``source`` as a notebook cell; returns what it printed."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        exec(compile(source, "<install cell>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return buf.getvalue()


def on_colab(monkeypatch, installed=False):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    if not installed:
        monkeypatch.setitem(sys.modules, "fa_jax", None)  # importlib finds no fa_jax


def test_every_notebook_opens_with_the_same_install_cell():
    sync = load_script("colab/sync_notebooks.py", "sync_notebooks")
    assert sorted(p.stem for p in (ROOT / "colab").glob("*.ipynb")) == sorted(NAMES)
    for name in NAMES:
        assert install_cell(name) == sync.INSTALL_CELL.strip(), f"{name}.ipynb's install cell differs"


def test_the_paired_scripts_carry_it_too():
    jupytext = pytest.importorskip("jupytext")
    sync = load_script("colab/sync_notebooks.py", "sync_notebooks")
    for name in NAMES:
        nb = jupytext.read(ROOT / "colab" / f"{name}.py")
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == sync.INSTALL_CELL.strip(), f"{name}.py's install cell differs"


@pytest.mark.parametrize("name", NAMES)
def test_outside_colab_it_does_nothing(name, monkeypatch, pip_calls):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setitem(sys.modules, "fa_jax", None)  # even with fa_jax missing
    for url in ("", "https://example.org/fa_jax"):
        assert run_cell(with_url(install_cell(name), url)) == ""
    assert pip_calls == []


@pytest.mark.parametrize("name", NAMES)
def test_on_colab_without_a_url_it_says_so_in_one_line(name, monkeypatch, pip_calls):
    on_colab(monkeypatch)
    for url in ("", "   "):
        out = run_cell(with_url(install_cell(name), url))
        assert pip_calls == []
        assert out.count("\n") == 1 and "FA_JAX_URL" in out, out


@pytest.mark.parametrize("name", NAMES)
def test_on_colab_with_a_url_it_pip_installs_that_spec(name, monkeypatch, pip_calls):
    on_colab(monkeypatch)
    assert run_cell(with_url(install_cell(name), "https://example.org/o/fa_jax@v1")) == ""
    assert pip_calls == [[sys.executable, "-m", "pip", "install", "-q", "git+https://example.org/o/fa_jax@v1"]]


def test_a_url_given_with_git_plus_or_spaces_gives_the_same_spec(monkeypatch, pip_calls):
    on_colab(monkeypatch)
    for url in ("git+https://example.org/fa_jax", "  https://example.org/fa_jax "):
        run_cell(with_url(install_cell(NAMES[0]), url))
    assert [c[-1] for c in pip_calls] == ["git+https://example.org/fa_jax"] * 2


def test_on_colab_with_fa_jax_already_installed_it_does_nothing(monkeypatch, pip_calls):
    """Running the notebook again in the same Colab runtime installs nothing."""
    on_colab(monkeypatch, installed=True)
    for url in ("", "https://example.org/fa_jax"):
        assert run_cell(with_url(install_cell(NAMES[0]), url)) == ""
    assert pip_calls == []


def test_sync_inserts_or_replaces_the_install_cell_in_both_forms(tmp_path, monkeypatch, capsys):
    """A new notebook gets the cell before its first code cell; an edited one gets it back, and the
    .ipynb takes the newer .py's other cells; --check agrees."""
    jupytext = pytest.importorskip("jupytext")
    sync = load_script("colab/sync_notebooks.py", "sync_notebooks")
    monkeypatch.setattr(sync, "COLAB", tmp_path)
    nb = jupytext.reads("# %% [markdown]\n# # Title\n\n# %%\nx = 1\n", fmt="py:percent")
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    jupytext.write(nb, tmp_path / "new.ipynb")
    assert sync.main(["--check"]) == 1 and "new.ipynb: install cell out of date" in capsys.readouterr().out
    assert sync.main([]) == 0
    want = ["# Title", sync.INSTALL_CELL.strip(), "x = 1"]
    for form in ("new.ipynb", "new.py"):
        assert [c.source for c in jupytext.read(tmp_path / form).cells] == want, form
    script = tmp_path / "new.py"  # edit the .py: a changed install cell and a new cell
    script.write_text(script.read_text().replace('FA_JAX_URL = ""', 'FA_JAX_URL = "https://example.org/x"')
                      + "\n# %%\ny = 2\n")
    later = (tmp_path / "new.ipynb").stat().st_mtime + 10
    os.utime(script, (later, later))
    assert sync.main(["--check"]) == 1
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0
    for form in ("new.ipynb", "new.py"):
        assert [c.source for c in jupytext.read(tmp_path / form).cells] == [*want, "y = 2"], form
