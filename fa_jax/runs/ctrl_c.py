"""Imported first by every script (``from fa_jax.runs import ctrl_c``): from then on, Ctrl-C ends
the script with exit code 130 and one line, also during its imports (:mod:`fa_jax.interrupt`).

Importing it installs the handler only in a process started as ``python SCRIPT.py`` (the
``__main__`` module is that file); a script imported by other code (tests, a notebook) leaves
Ctrl-C alone until its ``main`` runs under :class:`fa_jax.runs.cli.guarded`."""

import os
import sys

from fa_jax import interrupt

_main = sys.modules.get("__main__")
if getattr(_main, "__spec__", None) is None and getattr(_main, "__file__", None) and sys.argv and \
        os.path.basename(_main.__file__) == os.path.basename(sys.argv[0]):
    interrupt.on_ctrl_c(os.path.basename(sys.argv[0]))
