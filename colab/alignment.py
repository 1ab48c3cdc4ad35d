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
# # Why does DFA learn? Alignment with backprop, layer by layer
#
# We train BP, FA and DFA on scikit-learn's 8x8 digits (10 classes) with diagnostics on, then
# look at (1) the angle between each rule's weight update and the true BP gradient per layer,
# (2) gradient norms, (3) a 2-D map of a hidden layer before and after training, and
# (4) how the choice of feedback matrices (the "scheme") changes accuracy and alignment.
#
# On Colab, set `FA_JAX_URL` in the first code cell to the project's git URL, then run all cells.
# Set `FA_JAX_SMALL=1` for a tiny run (that is what the tests execute).

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

from IPython.display import Image, Markdown, display

import fa_jax as fj
from fa_jax.runs.plots import redraw

SMALL = os.environ.get("FA_JAX_SMALL") == "1"
cfg = ({"seeds": 2, "steps": 100, "eval_every": 50, "width": 16, "depth": 2} if SMALL
       else {"seeds": 4, "steps": 2000, "eval_every": 100, "width": 128, "depth": 3})
task = fj.data.digits()
model = fj.mlp([64] + [cfg["width"]] * cfg["depth"] + [10], activation="tanh")
print(task.name, model.sizes, cfg)

# %% [markdown]
# ## Train BP, FA and DFA with diagnostics
# `compare_rules` runs one vmapped, jit-compiled sweep per rule (`fj.sweep(..., diagnostics=True)`)
# and writes a run directory: metrics, summary and every figure.

# %%
study = fj.Study.start("runs/alignment-notebook", {"task": task.name, **cfg}, progress=False, checkpoint_every=0)
out = study.out
results, rows, table = fj.compare_rules(
    study, model, task, ["bp", "fa", "dfa"], seeds=cfg["seeds"], steps=cfg["steps"], eval_every=cfg["eval_every"],
    batch_size=64, lr=1e-3, diagnostics=True, embed_layer=cfg["depth"], embed_method="pca" if SMALL else "tsne")
display(Markdown(table))

# %% [markdown]
# ## Gradient alignment: angle between the rule's update and BP's gradient
# 0° means the rule follows backprop exactly; below 90° the update still descends the loss.
# The output layer's gradient is exact for all three rules.

# %%
metric_rows = study.metric_rows
display(Markdown(fj.tables.layer_table(metric_rows, "grad_alignment_deg")))
display(Image(str(out / "alignment.png")))

# %% [markdown]
# Weight alignment: FA's forward weights turn towards the feedback `B`; DFA's product of the
# forward weights above a layer turns towards that layer's `B`.

# %%
display(Markdown(fj.tables.layer_table(metric_rows, "weight_alignment_deg", hidden=True)))
display(Image(str(out / "weight_alignment.png")))

# %% [markdown]
# ## Gradient norms per layer

# %%
display(Image(str(out / "grad_norms.png")))

# %% [markdown]
# ## The last hidden layer before and after training (t-SNE; PCA at small size)

# %%
display(Image(str(out / "embedding.png")))

# %% [markdown]
# Every figure can be redrawn from the run directory's files without retraining
# (`python -m fa_jax.plot RUN_DIR` in a shell):

# %%
print([p.name for p in redraw(out)])

# %% [markdown]
# ## Feedback schemes
# Codebases disagree on how to draw `B`; `fj.init_feedback(..., scheme=)` offers their presets.

# %%
schemes = ["default", "tinydfa"] if SMALL else ["default", *fj.FEEDBACK_SCHEMES]
# "default" reuses the program compiled above (same configuration); each scheme compiles once.
lines = ["| scheme | DFA test acc | angle to BP, hidden layers (°) |", "|---|---|---|"]
for s in schemes:
    res = fj.sweep(model, task, rule="dfa", seeds=cfg["seeds"], steps=cfg["steps"], eval_every=cfg["eval_every"],
                   feedback={} if s == "default" else {"scheme": s}, diagnostics=True, progress=False)
    angle = res.diagnostics["grad_alignment_deg"][:, -1, :-1].mean()
    lines.append(f"| {s} | {res.final_test_acc.mean():.3f} | {angle:.1f} |")
display(Markdown("\n".join(lines)))
