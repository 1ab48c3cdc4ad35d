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
# # Your own Flax model under feedback alignment
#
# `fj.from_flax(module, input_shape)` wraps an unchanged `flax.linen` model (or an NNX one,
# through the same call) so that BP and every rule of the FA and DFA families train it with
# `fj.sweep`, and the alignment diagnostics measure it. This notebook wraps a small linen CNN,
# looks at the FA feedback (a tree that mirrors the params), chooses DFA points with
# `fj.DFAPoint`, trains over seeds and reads the per-layer alignment plots.
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
import tempfile
from pathlib import Path

import flax.linen as nn
import jax
from IPython.display import Image, Markdown, display

import fa_jax as fj
from fa_jax.analysis.diagnostics import angle_deg

SMALL = os.environ.get("FA_JAX_SMALL") == "1"
cfg = ({"seeds": 2, "steps": 20, "eval_every": 10, "channels": 4, "rules": ["fa", "dfa"]} if SMALL
       else {"seeds": 3, "steps": 600, "eval_every": 50, "channels": 16, "rules": ["bp", "fa", "dfa"]})
task = fj.data.images("digits")  # 8x8 digits, NHWC: x (n, 8, 8, 1), 10 classes
print(task.name, task.input_shape, cfg)

# %% [markdown]
# ## 1. A plain linen model, wrapped
# Nothing in the model knows about fa_jax. `from_flax` traces it once (shapes only) and finds its
# weighted layers (`Dense`, `Conv`, ... : every layer with a `kernel`), in call order.

# %%
class CNN(nn.Module):
    channels: int = 16

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(self.channels, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(2 * self.channels, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(64)(x))
        return nn.Dense(10)(x)


model = fj.from_flax(CNN(cfg["channels"]), task.input_shape)
for path, kind, kernel, h_in, h_out in model.calls:
    print(f"{'/'.join(path):8s} {kind:6s} kernel {kernel}  {h_in} -> {h_out}")
params = model.init(jax.random.key(0))  # the Flax params pytree, untouched
print(jax.tree.map(lambda a: a.shape, params))

# %% [markdown]
# ## 2. FA: one feedback matrix per kernel, in the params' own tree
# Under `rule="fa"` every weighted layer's forward is its own, but its input receives the layer's
# backward computed with a fixed random `B` in place of the kernel (for a dense layer
# `delta @ B.T`; for a conv, the conv's transpose with kernel `B`). The feedback mirrors the
# params: `fb["Dense_0"]["kernel"]` is the `B` of `params["Dense_0"]["kernel"]`; biases take none.
# Plain `jax.grad` through `model.apply(..., rule="fa")` is the FA update (`jax.jit` compiles it as one program).

# %%
fb = fj.init_feedback(jax.random.key(1), model, "fa")
print(jax.tree.map(lambda a: a.shape, fb))
x, y = task.sample(jax.random.key(2), 64)
loss = fj.losses.get("softmax_ce")
g_fa = jax.jit(jax.grad(lambda p: loss(model.apply(p, x, rule="fa", feedback=fb), y)))(params)
g_bp = jax.jit(jax.grad(lambda p: loss(model.apply(p, x), y)))(params)
for path, a, b in zip(model.kernel_paths, model.kernels(g_fa), model.kernels(g_bp)):
    print(f"{'/'.join(path):8s} angle(FA update, BP gradient) = {float(angle_deg(a, b)):5.1f}°")

# %% [markdown]
# The last layer's gradient is exact (0°); below it FA's update starts near 90° from BP's at
# initialization, since `B` is unrelated to the weights. Training aligns the weights with `B`.
#
# ## 3. DFA points: where the output error enters
# Under `rule="dfa"` the error `e` (dL/dlogits) is projected straight to each *point* as `e @ B_p`,
# and no gradient crosses a point; between points, gradients flow by ordinary BP. By default the
# points are the inputs of the weighted layers 2..L (the output of each layer after its
# activation and pooling, up to the next weighted layer). `model.points` lists them with their
# shapes; the DFA feedback is one `(n_out, prod(shape))` matrix per point.

# %%
print(model.points)
fb_dfa = fj.init_feedback(jax.random.key(1), model, "dfa")
print(jax.tree.map(lambda a: a.shape, fb_dfa))

# %% [markdown]
# To choose the points yourself, put `fj.DFAPoint()` markers in the model (an identity layer
# outside DFA). Any marker replaces all the default points: here the error enters only at the
# flattened output of the conv stack, BP carries it down through both convs, and the two dense
# layers above the marker get their true gradient. One marker per block of a deep net is the
# "macro" DFA of Launay et al. (2020) (`fa_jax.wrap.examples.ResNet(dfa_blocks=True)`).

# %%
class MarkedCNN(CNN):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(self.channels, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(2 * self.channels, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = fj.DFAPoint()(x.reshape((x.shape[0], -1)))  # a point after the conv stack
        x = nn.relu(nn.Dense(64)(x))
        return nn.Dense(10)(x)


marked = fj.from_flax(MarkedCNN(cfg["channels"]), task.input_shape)
print(marked.points)  # the marker, shape (flattened conv output,)

# %% [markdown]
# ## 4. Train over seeds with `fj.sweep`
# One vmapped, jit-compiled program trains all seeds of a rule; `diagnostics=True` records, at
# every evaluation, the angle between each layer's update and BP's on one extra batch.
# The study engine (`fj.Study`) writes a run directory with the metrics and figures.

# %%
out = Path(tempfile.mkdtemp(prefix="flax_models-"))
study = fj.Study.start(out / "run", {"task": task.name, **cfg}, progress=False, checkpoint_every=0)
for rule in cfg["rules"]:
    study.sweep({"rule": rule}, model, task, rule=rule, seeds=cfg["seeds"], steps=cfg["steps"],
                eval_every=cfg["eval_every"], batch_size=32, lr=1e-3, diagnostics=True)
study.finish()
display(Markdown(fj.tables.table(fj.tables.summarize(study.rows, "rule"))))
display(Image(str(fj.plots.curves(study.metric_rows, out / "curves.png", title=task.name))))

# %% [markdown]
# ## 5. Reading the alignment plots
# One panel per weighted layer (`W_1` is the first conv, the last is the output layer), the angle
# between the rule's weight update and the true BP gradient at the same params and batch, mean ±
# std over seeds. 0° is BP itself; below the dashed 90° line the update still descends the loss.
# The output layer is exact for FA and DFA. A curve that falls over training means the forward
# weights came to align with the feedback ("alignment"); one that stays near 90° means that layer
# learns little of what BP would teach it.

# %%
display(Markdown(fj.tables.layer_table(study.metric_rows, "grad_alignment_deg")))
display(Image(str(fj.plots.layer_curves(study.metric_rows, out / "alignment.png", title=task.name))))

# %% [markdown]
# For the FA family also `weight_alignment_deg`: the angle between `W_(l+1)` and the `B_(l+1)`
# that carries the signal to `h_l`; FA's weights turn towards their feedback as they learn.

# %%
display(Markdown(fj.tables.layer_table(study.metric_rows, "weight_alignment_deg", hidden=True)))

# %% [markdown]
# The same, from the command line, for the bundled examples (the flax MNIST CNN and a batch-norm
# ResNet) or any model by import path:
# `python experiments/flax_models.py --model mypkg.nets:Net --rules bp,fa,dfa --diagnostics`.
