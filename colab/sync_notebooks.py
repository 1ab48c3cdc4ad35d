"""Write the install cell into every notebook of colab/ and keep each .ipynb paired with its .py.

The notebooks are jupytext-paired (``formats: ipynb,py:percent``): edit either form, then run
``python colab/sync_notebooks.py``. Each pair is first synced (the newer form's cells, the .ipynb's
outputs), then its first code cell is set to :data:`INSTALL_CELL` (inserted before the first code
cell if that one is not an install cell) and each form that changed is written. ``--check`` writes
nothing and exits 1 naming every notebook whose install cell or pairing is out of date.
"""

import argparse
import sys
from pathlib import Path

# nbformat and jupytext (dev dependencies) are imported on use, so tests can read INSTALL_CELL without them.

COLAB = Path(__file__).resolve().parent
MARKER = "# Install fa_jax on Colab"  # the first line of the install cell

# The one install cell of every notebook: the package spec is "git+" + FA_JAX_URL, and the URL is the
# one value a Colab user sets. Outside Colab, or with fa_jax importable, the cell does nothing.
INSTALL_CELL = '''
# Install fa_jax on Colab (elsewhere this cell does nothing): set FA_JAX_URL, then run all cells.
FA_JAX_URL = ""  # the project's git URL, e.g. "https://github.com/OWNER/fa_jax" (a tag or branch: ".../fa_jax@v1")
import importlib.util
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("fa_jax") is None:
    if not FA_JAX_URL.strip():
        print("fa_jax is not installed: set FA_JAX_URL in the first code cell to the project's git URL, run it again")
    else:
        import subprocess

        spec = FA_JAX_URL.strip().removeprefix("git+")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{spec}"], check=True)
'''


def with_install_cell(nb):
    """``nb`` (a jupytext notebook) with its first code cell set to :data:`INSTALL_CELL`; True if it changed."""
    from nbformat.v4 import new_code_cell

    source = INSTALL_CELL.strip()
    i = next((k for k, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    if i < len(nb.cells) and nb.cells[i].source.startswith(MARKER):
        if nb.cells[i].source == source:
            return False
        nb.cells[i].source = source
    else:
        nb.cells.insert(i, new_code_cell(source))
    return True


def sync(path: Path, check: bool) -> list[str]:
    """Sync the pair of ``path`` (a .ipynb) and write its install cell; the problems found when ``check``."""
    import jupytext

    script = path.with_suffix(".py")
    if check:
        nb, problems = jupytext.read(path), []
        if with_install_cell(nb):
            problems.append(f"{path.name}: install cell out of date")
        if not script.exists():
            problems.append(f"{path.name}: no paired {script.name}")
        elif [(c.cell_type, c.source) for c in jupytext.read(script).cells] != [
                (c.cell_type, c.source) for c in jupytext.read(path).cells]:
            problems.append(f"{path.name} and {script.name} differ")
        return problems
    from jupytext.combine import combine_inputs_with_outputs

    nb = jupytext.read(path)
    if script.exists() and script.stat().st_mtime > path.stat().st_mtime:  # the .py was edited last
        nb = combine_inputs_with_outputs(jupytext.read(script), nb)
    with_install_cell(nb)
    for file, fmt in ((path, "ipynb"), (script, "py:percent")):
        text = jupytext.writes(nb, fmt).rstrip("\n") + "\n"
        if not file.exists() or file.read_text() != text:
            file.write_text(text)
    return []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sync_notebooks.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any notebook is out of date")
    args = parser.parse_args(argv)
    problems = [p for path in sorted(COLAB.glob("*.ipynb")) for p in sync(path, args.check)]
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
