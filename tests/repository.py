"""Shared paths: ``ROOT`` is the repository (README.md, docs/, experiments/, colab/), and
``load_script`` runs an experiment script as a fresh module, so a test calls its ``main(argv)``
in-process."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(path, name):
    """The script at ``path`` (relative to ROOT, or absolute) executed as a new module named ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

