"""Execute every notebook in colab/ at small size (FA_JAX_SMALL=1), as a user would run it top to bottom.

The notebooks are plain Python (no IPython magics or shell escapes, which the compile step below would
refuse), so their code cells run in this process, one fresh namespace per notebook, in order: the same
code a kernel runs, without a kernel's start-up and a second import of jax and fa_jax per notebook.
``IPython.display.Image`` given a path that is no file takes the path for image data; here it fails instead.
"""

import json
import os
import tempfile
from pathlib import Path

import pytest
from repository import ROOT, load_script

NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))


def code_cells(path):
    """``(index, source)`` of the code cells of the .ipynb at ``path``, in order."""
    cells = json.loads(path.read_text())["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    display = pytest.importorskip("IPython.display")
    image = display.Image

    def shown_image(data=None, *args, **kwargs):
        if isinstance(data, str | os.PathLike) and not str(data).startswith(("http://", "https://")):
            assert Path(data).is_file(), f"{path.name} shows {data}, which no cell wrote"
        return image(data, *args, **kwargs)

    monkeypatch.setattr(display, "Image", shown_image)
    monkeypatch.setenv("FA_JAX_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)  # relative run directories land here
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # and tempfile.mkdtemp() ones
    namespace = {"__name__": "__main__"}
    for i, source in code_cells(path):
        try:
            code = compile(source, f"{path.name}, cell {i}", "exec")
            exec(code, namespace)  # noqa: S102
        except Exception as err:
            err.add_note(f"in {path.name}, cell {i}:\n{source}")
            raise


def test_every_notebook_is_paired_with_its_script_and_install_cell():
    """Notebooks are jupytext-paired with a percent-format .py (readable diffs) holding the same cells;
    colab/sync_notebooks.py keeps them so and writes their install cell."""
    pytest.importorskip("jupytext")
    for nb in NOTEBOOKS:
        assert nb.with_suffix(".py").exists(), f"{nb.name} has no paired {nb.with_suffix('.py').name}"
    assert load_script("colab/sync_notebooks.py", "sync_notebooks").main(["--check"]) == 0, \
        "run python colab/sync_notebooks.py"
