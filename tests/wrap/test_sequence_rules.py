"""The bundled transformer and recurrent language models under every rule (float64): FA with B = W is
BP (BPTT for the RNNs); each DFA point receives e @ B per token and no gradient crosses it; with the
error at the last block's output and B = I, macro DFA on one block is BP; DFA on an RNN sends no
signal through time; the causal mask holds; bad sizes are one-line errors before anything compiles."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error

import fa_jax as fj
from fa_jax.analysis import diagnostics
from fa_jax.wrap.sequence_models import language_model

V, T, B = 7, 5, 3
F64 = "float64"
TOL = dict(rtol=1e-10, atol=1e-12)
SMALL = {"transformer": dict(d_model=8, n_heads=2, n_blocks=2), "gru": dict(d_hidden=6, d_embed=4),
         "elman": dict(d_hidden=6, d_embed=4, n_layers=2)}
RULES = ["bp", "fa", "dfa", "kp", "usf", "frsf", "brsf", "sdfa", "drtp"]


def lm(kind, **opts):
    return language_model(kind, V, T, param_dtype=F64, **{**SMALL[kind], **opts})


def tokens(key, n=B):
    return jax.random.randint(key, (n, T), 0, V)


def loss(model, params, x, y, rule, fb, **kw):
    return fj.losses.softmax_ce(model.apply(params, x, rule=rule, feedback=fb, targets=y, **kw), y)


def grads(model, params, x, y, rule, fb):
    """The rule's update of every param, as one compiled program (not one per operation)."""
    return jax.jit(jax.grad(lambda p, x, y, fb: loss(model, p, x, y, rule, fb)))(params, x, y, fb)


def signals(model, params, x, y, rule, fb):
    """The gradient each DFA point receives, (batch, T, *point shape) per point."""
    return jax.jit(lambda p, x, y, fb: diagnostics.rule_gradients(model, rule, fj.losses.softmax_ce, p, fb, x, y)[1])(
        params, x, y, fb)


@pytest.mark.parametrize("kind", ["transformer", "gru", "elman"])
def test_fa_with_B_equal_to_every_kernel_is_bp(x64, keys, kind):
    k1, k2, k3 = keys(3)
    model = lm(kind)
    params = model.init(k1)
    x, y = tokens(k2), tokens(k3)
    fb = model.feedback_tree("fa", model.kernels(params))
    g_bp = grads(model, params, x, y, "bp", None)
    chex.assert_trees_all_close(grads(model, params, x, y, "fa", fb), g_bp, **TOL)
    g_fa = grads(model, params, x, y, "fa", fj.init_feedback(k3, model, "fa", dtype=F64))
    assert not np.allclose(g_fa["embed"]["embedding"], g_bp["embed"]["embedding"])


@pytest.mark.parametrize("opts", [{}, {"points": "micro"}, {"error_at": "last_block"}])
def test_every_transformer_point_receives_e_at_B_per_token(x64, keys, opts):
    k1, k2, k3, k4 = keys(4)
    model = lm("transformer", **opts)
    params = model.init(k1)
    x, y = tokens(k2), tokens(k3)
    fb = fj.init_feedback(k4, model, "dfa", dtype=F64)
    s_bp = signals(model, params, x, y, "bp", None)
    if opts.get("error_at") == "last_block":  # e = dL/dh at the last block's output: BP's signal there
        e = s_bp[-1]
        assert model.source_size == 8 and all(B_.shape[0] == 8 for B_ in fb.values())
    else:
        e = jax.grad(lambda z: fj.losses.softmax_ce(z, y))(model.apply(params, x))
    s = signals(model, params, x, y, "dfa", fb)
    assert len(s) == len(model.points) == (6 if opts.get("points") == "micro" else 2)
    for (name, shape), got in zip(model.points, s):
        assert got.shape == (B, T, *shape)
        np.testing.assert_allclose(got, jnp.einsum("btv,vd->btd", e, fb[name]), **TOL)
    for name, got in zip(model.point_names, signals(model, params, x, y, "sdfa", fb)):
        np.testing.assert_allclose(got, jnp.sign(e) @ fb[name], **TOL)


@pytest.mark.parametrize("points", ["macro", "micro"])
def test_no_gradient_crosses_a_transformer_point(x64, keys, points):
    """Zeroing every B silences all but the layers above the last point; a B above block 0 changes
    nothing in block 0 or the embeddings."""
    k1, k2, k3, k4, k5 = keys(5)
    model = lm("transformer", points=points)
    params = model.init(k1)
    x, y = tokens(k2), tokens(k3)
    fb = fj.init_feedback(k4, model, "dfa", dtype=F64)
    g0 = grads(model, params, x, y, "dfa", jax.tree.map(jnp.zeros_like, fb))
    for name in ("embed", "pos", "block_0", "block_1"):
        assert all(float(jnp.abs(a).max()) == 0.0 for a in jax.tree.leaves(g0[name])), name
    assert float(jnp.abs(g0["unembed"]["kernel"]).max()) > 0 and float(jnp.abs(g0["ln_final"]["scale"]).max()) > 0
    g = grads(model, params, x, y, "dfa", fb)
    other = dict(fb)
    for name in model.point_names:
        if name.startswith("block_1"):
            other[name] = jax.random.normal(k5, fb[name].shape, F64)
    g2 = grads(model, params, x, y, "dfa", other)
    for name in ("embed", "pos", "block_0"):
        chex.assert_trees_all_close(g2[name], g[name], **TOL)
    assert not np.allclose(g2["block_1"]["mlp_out"]["kernel"], g["block_1"]["mlp_out"]["kernel"])


def test_macro_dfa_with_the_error_at_the_last_block_and_B_identity_is_bp_on_one_block(x64, keys):
    k1, k2, k3 = keys(3)
    model = lm("transformer", n_blocks=1, error_at="last_block")
    params = model.init(k1)
    x, y = tokens(k2), tokens(k3)
    fb = {"block_0/out": jnp.eye(8, dtype=F64)}
    chex.assert_trees_all_close(grads(model, params, x, y, "dfa", fb), grads(model, params, x, y, "bp", None), **TOL)
    with_logits = lm("transformer", n_blocks=1)  # the error at the logits instead: B is (V, d), not BP
    assert fj.init_feedback(k1, with_logits, "dfa")["block_0/out"].shape == (V, 8)


@pytest.mark.parametrize("kind", ["gru", "elman"])
def test_dfa_on_a_recurrent_net_sends_no_signal_through_time(x64, keys, kind):
    """The cell's DFA gradient is sum_t vjp of one step at BP's h_{t-1}, fed e_t @ B; h receives e_t @ B."""
    k1, k2, k3, k4 = keys(4)
    model = lm(kind, n_layers=1)
    params = model.init(k1)
    x, y = tokens(k2), tokens(k3)
    fb = fj.init_feedback(k4, model, "dfa", dtype=F64)
    e = jax.grad(lambda z: fj.losses.softmax_ce(z, y))(model.apply(params, x))
    signal = e @ fb["h0"]  # (B, T, d)
    (got,) = signals(model, params, x, y, "dfa", fb)
    np.testing.assert_allclose(got, signal, **TOL)
    cell = (nn.GRUCell if kind == "gru" else nn.SimpleCell)(6, param_dtype=F64)
    emb = params["embed"]["embedding"][x]  # (B, T, d_embed)

    def step(p, h, xt):
        return cell.apply({"params": p}, h, xt)[1]

    h = jnp.zeros((B, 6), F64)
    want_cell = jax.tree.map(jnp.zeros_like, params["cell_0"])
    want_emb = jnp.zeros_like(emb)
    for t in range(T):
        out, vjp = jax.vjp(step, params["cell_0"], h, emb[:, t])
        dp, _, dx = vjp(signal[:, t])
        want_cell = jax.tree.map(jnp.add, want_cell, dp)
        want_emb = want_emb.at[:, t].set(dx)
        h = out
    g = grads(model, params, x, y, "dfa", fb)
    chex.assert_trees_all_close(g["cell_0"], want_cell, **TOL)
    want_table = jnp.zeros_like(params["embed"]["embedding"]).at[x.reshape(-1)].add(want_emb.reshape(-1, 4))
    np.testing.assert_allclose(g["embed"]["embedding"], want_table, **TOL)
    # BPTT differs: the earlier steps also get the later steps' errors through h_t
    g_bp = grads(model, params, x, y, "bp", None)["cell_0"]
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(g_bp), jax.tree.leaves(want_cell)))


@pytest.mark.parametrize("kind", ["transformer", "gru"])
def test_logits_at_t_do_not_depend_on_later_tokens(keys, kind):
    k1, k2, k3 = keys(3)
    model = language_model(kind, V, T, **SMALL[kind])
    params = model.init(k1)
    x = tokens(k2)
    later = x.at[:, 3:].set(tokens(k3)[:, 3:])
    assert not np.array_equal(x, later)
    a, b = model.apply(params, x), model.apply(params, later)
    np.testing.assert_array_equal(a[:, :3], b[:, :3])
    assert not np.allclose(a[:, 3:], b[:, 3:])


@pytest.mark.parametrize("kind", ["transformer", "gru"])
def test_every_rule_gives_a_finite_update_and_the_diagnostics_are_per_kernel_and_per_point(keys, kind):
    k1, k2 = keys(2)
    model = language_model(kind, V, T, **{**SMALL[kind], **({"n_blocks": 1} if kind == "transformer" else {})})
    params = model.init(k1)
    x = tokens(k2, 4)
    step = jax.jit(lambda p, fb, rule: grads(model, p, x, x, rule, fb), static_argnums=2)
    g_bp = step(params, None, "bp")
    for rule in RULES[1:]:
        g = step(params, fj.init_feedback(k1, model, rule), rule)
        k_rule, k_bp = model.kernels(g), model.kernels(g_bp)
        assert all(bool(jnp.isfinite(a).all()) for a in k_rule), rule
        assert not all(np.allclose(a, b) for a, b in zip(k_rule, k_bp)), rule
    for rule in ("bp", "fa", "dfa"):
        fb = None if rule == "bp" else fj.init_feedback(k1, model, rule)
        d = jax.jit(lambda p, fb: diagnostics.diagnose(model, rule, fj.losses.softmax_ce, p, fb, x, x))(params, fb)
        assert d["grad_alignment_deg"].shape == (len(model.kernel_paths),), rule
        assert d["signal_alignment_deg"].shape == (len(model.points),), rule
        if rule == "bp":
            np.testing.assert_allclose(d["grad_alignment_deg"], 0.0, atol=0.1)  # float32 arccos near 1
            np.testing.assert_allclose(d["signal_alignment_deg"], 0.0, atol=0.1)
        else:
            assert bool((d["grad_alignment_deg"][:-1] > 1).any()), rule


def test_bad_sizes_are_one_line_errors_before_compiling():
    from fa_jax.wrap.recurrent import RecurrentLM
    from fa_jax.wrap.transformer import TransformerLM

    one_line_error(lambda: language_model("transformer", V, T, d_model=8, n_heads=3),
                   "n_heads=3 does not divide d_model=8")
    one_line_error(lambda: fj.from_flax(TransformerLM(vocab=V, context=5, d_model=8, n_heads=2), (6,),
                                        input_dtype="int32"),
                   "sequence length 6 is longer than the model's context 5")
    one_line_error(lambda: language_model("transformer", V, T, points="all"), "points must be one of macro, micro")
    one_line_error(lambda: RecurrentLM(vocab=V, cell="lstm"), "cell must be one of gru, elman")
    one_line_error(lambda: language_model("mamba", V, T), "sequence model must be one of transformer, gru, elman")
    one_line_error(lambda: language_model("gru", 1, T), "vocab must be >= 2")
    one_line_error(lambda: language_model("gru", V, T, width=3), "sequence model 'gru'")
    m = language_model("transformer", V, T, d_model=8, n_heads=2, error_at="last_block")
    one_line_error(lambda: m.apply(m.init(jax.random.key(0)), jnp.zeros((1, T), jnp.int32), rule="drtp",
                                   feedback=fj.init_feedback(jax.random.key(1), m, "dfa")),
                   "rule 'drtp' sends the target")
    model = language_model("gru", V, T, d_hidden=4)
    task = fj.data.from_arrays(np.zeros((4, T)), np.zeros(4), np.zeros((4, T)), np.zeros(4), n_out=V + 1)
    one_line_error(lambda: fj.sweep(model, task, rule="bp", seeds=1, steps=1, eval_every=1),
                   f"the sequence model reads {T} tokens and has a vocabulary of {V}, but task 'arrays' has "
                   f"sequences of {T} tokens and a vocabulary of {V + 1}")


class Tied(nn.Module):
    @nn.compact
    def __call__(self, x):
        emb = nn.Embed(V, 4)
        return emb.attend(jnp.tanh(emb(x)))


class PointInCell(nn.RNNCellBase):
    features: int = 4

    @nn.compact
    def __call__(self, carry, x):
        h = fj.DFAPoint()(jnp.tanh(nn.Dense(self.features)(x) + nn.Dense(self.features, use_bias=False)(carry)))
        return h, h

    def initialize_carry(self, rng, input_shape):
        return jnp.zeros((*input_shape[:-1], self.features))

    @property
    def num_feature_axes(self):
        return 1


class RNNWithInnerPoint(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(V)(nn.RNN(PointInCell())(nn.Embed(V, 4)(x)))


def test_tied_unembedding_and_a_point_inside_a_cell_are_refused():
    one_line_error(lambda: fj.from_flax(Tied(), (T,), input_dtype="int32"), "tied unembedding (Embed.attend)")
    one_line_error(lambda: fj.from_flax(RNNWithInnerPoint(), (T,), input_dtype="int32"), "is inside the recurrent cell")


def test_an_nnx_rnn_is_refused_in_one_line():
    from flax import nnx

    class NNXRecurrent(nnx.Module):
        def __init__(self, rngs):
            self.emb = nnx.Embed(V, 4, rngs=rngs)
            self.rnn = nnx.RNN(nnx.GRUCell(4, 4, rngs=rngs))
            self.out = nnx.Linear(4, V, rngs=rngs)

        def __call__(self, x):
            return self.out(self.rnn(self.emb(x)))

    one_line_error(lambda: fj.from_flax(NNXRecurrent, (T,), input_dtype="int32"), "layer rnn (nnx.RNN) is not wired")


class PointAfterOutput(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = fj.DFAOutput()(fj.DFAPoint()(jnp.tanh(nn.Embed(V, 4)(x))))
        return nn.Dense(V)(fj.DFAPoint()(h))


def test_a_point_after_the_dfa_output_marker_is_refused_in_one_line():
    one_line_error(lambda: fj.from_flax(PointAfterOutput(), (T,), input_dtype="int32"),
                   "comes after the DFAOutput marker DFAOutput_0")
