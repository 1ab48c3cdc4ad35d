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


FAST_FUSION = "--xla_cpu_use_fusion_emitters=false"  # set by conftest.py: compiles faster


def in_default_fusion(request) -> bool:
    """Run the calling test again in a subprocess under XLA's default CPU fusion and say whether
    that was done (then the caller returns). For tests that compare two different programs bit
    for bit: conftest.py turns XLA's CPU fusion emitters off to compile faster, and two programs
    that fuse alike by default may then round one operation differently."""
    import os
    import subprocess
    import sys

    flags = os.environ.get("XLA_FLAGS", "")
    if FAST_FUSION not in flags:
        return False
    env = {**os.environ, "XLA_FLAGS": flags.replace(FAST_FUSION, "--xla_cpu_use_fusion_emitters=true")}
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        request.node.nodeid], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    return True
