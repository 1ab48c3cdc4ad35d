"""Imported first by every script (``from fa_jax.runs import ctrl_c``): from then on, Ctrl-C ends
the script with exit code 130 and one line, also during its imports (:mod:`fa_jax.interrupt`).
Importing it installs the handler for the script named by ``sys.argv[0]``."""

import os
import sys

from fa_jax import interrupt

interrupt.on_ctrl_c(os.path.basename(sys.argv[0]) or "python")
