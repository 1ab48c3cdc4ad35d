# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
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
# Set `FA_JAX_SMALL=1` for a tiny grid (seconds on a CPU).

# %%
# On Colab: install fa_jax from its repository (set REPO_URL to the project's git URL).
REPO_URL = "https://github.com/OWNER/fa_jax"  # the project has no public URL yet: edit this line
try:
    import fa_jax  # noqa: F401
except ImportError:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

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
