# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which learning rules learn sparse parities?
#
# BP, DFA and the lazy baselines (NTK regime, random features) on k-sparse parity, after
# Daniely & Malach, "Learning Parities with Neural Networks" (NeurIPS 2020). Each cell of the
# grid (method, n, k, width) trains all its seeds as one vmapped, jit-compiled `fj.sweep`.
# On Colab, set `FA_JAX_URL` in the first code cell to the project's git URL, then run all cells.
# Set `FA_JAX_SMALL=1` for a tiny grid (seconds on a CPU).

# %%
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

# %%
import os
import tempfile
from pathlib import Path

from IPython.display import Image, Markdown, display

import fa_jax as fj
from fa_jax.runs import plots, tables
from fa_jax.runs.study import Study, cell_name, product

SMALL = os.environ.get("FA_JAX_SMALL") == "1"
if SMALL:  # a smoke-sized grid
    METHODS, NS, KS, WIDTHS, SEEDS, STEPS, EVAL_EVERY = ["bp", "rf_relu"], [6, 10], [2], [32], 2, 200, 50
else:  # the default grid of experiments/parity_study.py (a few minutes on a CPU, seconds on a GPU)
    METHODS = ["bp", "dfa", "ntk", "rf_gaussian", "rf_relu", "rf_linear"]
    NS, KS, WIDTHS, SEEDS, STEPS, EVAL_EVERY = [10, 20, 30], [2, 3], [128], 4, 8000, 250
out = Path(tempfile.mkdtemp(prefix="parity_study-"))
print(fj.__version__, "->", out)

# %% [markdown]
# ## Run the grid

# %%
tasks = {(n, k): fj.data.parity_task("parity", n, k) for n in NS for k in KS}
study = Study.start(out, {"methods": METHODS, "n": NS, "k": KS, "width": WIDTHS}, progress=not SMALL)
for c in product(method=METHODS, n=NS, k=KS, width=WIDTHS):
    study.sweep(c, fj.mlp([c["n"], c["width"], 1]), tasks[c["n"], c["k"]], rule=c["method"], name=cell_name(c),
                seeds=SEEDS, steps=STEPS, eval_every=EVAL_EVERY, optimizer="adam", lr=1e-3)
keys = ("method", "n", "k", "width")
by_cell = tables.summarize(study.rows, keys)
study.finish(lambda s: {"by_cell": by_cell})
rows = study.rows
display(Markdown(tables.table(by_cell, (*keys, *tables.GRID_TABLE))))

# %% [markdown]
# ## Accuracy vs n, and one heatmap per method over (n, k)

# %%
display(Image(str(plots.accuracy_vs_n(rows, out / "accuracy_vs_n.png"))))
for method in METHODS:
    display(Image(str(plots.heatmap(rows, out / f"heatmap_{method}.png", method))))
