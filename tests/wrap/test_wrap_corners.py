"""Corners of fj.from_flax and of the data it trains on: lifted transforms (nn.scan, nn.vmap, nn.remat, nn.jit)
under every kind of rule, integer inputs, NNX shape errors, seed-stacked params in fj.generate, unknown
train flags, and the refusals' wording."""

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from error_check import one_line_error
from flax import nnx

import fa_jax as fj
from fa_jax.training.compiles import count_compiles

F64 = jnp.float64
N_IN, WIDTH, N_OUT, BATCH = 5, 6, 3, 4


def refused(fn, match):
    """``fn()`` raises a one-line ValueError containing ``match`` and compiles nothing first."""
    with count_compiles() as c:
        msg = one_line_error(fn, match)
    assert c.count == 0, f"{c.count} compilations before the error: {msg}"
    return msg


def softmax_ce(y, labels):
    return -jnp.mean(jax.nn.log_softmax(y)[jnp.arange(y.shape[0]), labels])


def rule_grads(model, params, x, labels, rule, feedback):
    """``jax.grad`` of softmax_ce through ``model.apply`` under ``rule`` (jitted: one compilation)."""
    def loss(p, fb):
        return softmax_ce(model.apply(p, x, rule=rule, feedback=fb, targets=labels), labels)

    return jax.jit(jax.grad(loss))(params, feedback)


def data(keys):
    kx, _ = keys(2)
    return jax.random.normal(kx, (BATCH, N_IN), F64), jnp.array([0, 1, 2, 0])


# -- lifted transforms (linen) ----------------------------------------------------------------------------

class Step(nn.Module):
    """One scanned layer: ``(carry, _) -> (tanh(Dense(carry)), None)``; ``marker``: a DFAPoint on its output."""

    dtype: str = "float32"
    marker: bool = False

    @nn.compact
    def __call__(self, c, _):
        h = jnp.tanh(nn.Dense(WIDTH, param_dtype=self.dtype)(c))
        return (fj.DFAPoint()(h) if self.marker else h), None


class ScanNet(nn.Module):
    """Dense -> tanh -> nn.scan over two stacked Dense -> tanh layers -> Dense."""

    dtype: str = "float32"
    marker_inside: bool = False

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(WIDTH, param_dtype=self.dtype)(x))
        stack = nn.scan(Step, variable_axes={"params": 0}, split_rngs={"params": True}, length=2)
        x, _ = stack(self.dtype, self.marker_inside, name="stack")(x, None)
        return nn.Dense(N_OUT, param_dtype=self.dtype)(x)


def scan_reference(params, x, labels, source):
    """The DFA family on :class:`ScanNet` by hand: its one point is the stack's output h (the last layer's
    input); the last layer gets its true gradient, everything below gets ``vjp_h(source(e) @ B)``."""
    p = params

    def hidden(p):
        h = jnp.tanh(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        for i in range(2):
            h = jnp.tanh(h @ p["stack"]["Dense_0"]["kernel"][i] + p["stack"]["Dense_0"]["bias"][i])
        return h

    h, vjp = jax.vjp(hidden, p)
    out = p["Dense_1"]
    y = h @ out["kernel"] + out["bias"]
    e = jax.grad(lambda y_: softmax_ce(y_, labels))(y)
    return lambda B: {**vjp(source(e) @ B)[0], "Dense_1": {"kernel": h.T @ e, "bias": e.sum(0)}}


@pytest.mark.parametrize("rule,source", [("dfa", lambda e: e), ("sdfa", jnp.sign)])
def test_scanned_layers_train_under_the_dfa_family(x64, keys, rule, source):
    """nn.scan over layers: no point inside the scan; its output (the last layer's input) is the point, and
    BP runs through the scanned layers from it (checked against the DFA update by hand)."""
    x, labels = data(keys)
    model = fj.from_flax(ScanNet("float64"), (N_IN,), input_dtype="float64")
    assert model.points == (("Dense_1", (WIDTH,)),)
    params = model.init(keys(3)[2])
    fb = fj.init_feedback(keys(4)[3], model, rule, dtype=F64)
    got = rule_grads(model, params, x, labels, rule, fb)
    want = jax.jit(lambda p, B: scan_reference(p, x, labels, source)(B))(params, fb["Dense_1"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), got, want)


def test_scanned_layers_sweep_under_dfa(keys):
    x = np.asarray(jax.random.normal(keys(1)[0], (16, N_IN)))
    y = np.arange(16) % N_OUT
    task = fj.data.from_arrays(x, y, x, y)
    model = fj.from_flax(ScanNet(), (N_IN,))
    res = fj.sweep(model, task, rule="dfa", seeds=1, steps=2, eval_every=2, batch_size=8, lr=1e-2)
    assert np.isfinite(res.loss).all() and not res.diverged.any()


class Block(nn.Module):
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        return jnp.tanh(nn.Dense(WIDTH, param_dtype=self.dtype)(x))


class LiftedNet(nn.Module):
    """Dense -> tanh -> ``lift(Block)`` -> Dense; ``lift`` None: the block as is; ``marker``: a DFAPoint
    after the block (the point the lifted net has)."""

    lift: str | None = None
    marker: bool = False
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.Dense(WIDTH, param_dtype=self.dtype)(x))
        block = {None: Block, "remat": nn.remat(Block), "jit": nn.jit(Block),
                 "vmap": nn.vmap(Block, variable_axes={"params": None}, split_rngs={"params": False})}[self.lift]
        x = block(self.dtype, name="block")(x)
        if self.marker:
            x = fj.DFAPoint()(x)
        return nn.Dense(N_OUT, param_dtype=self.dtype, name="out")(x)


@pytest.mark.parametrize("lift", ["remat", "jit", "vmap"])
@pytest.mark.parametrize("rule", ["bp", "fa", "usf", "dfa", "sdfa", "drtp"])
def test_lifted_blocks_give_the_plain_blocks_gradient(x64, keys, lift, rule):
    """A block under nn.remat / nn.jit / nn.vmap (params broadcast) trains as the same block unlifted: FA
    and BP exactly so; the DFA family as the unlifted net with a DFAPoint after the block (no point is made
    inside a lifted transform; before, the points inside it lost their signal: Dense_0 got no gradient)."""
    x, labels = data(keys)
    lifted = fj.from_flax(LiftedNet(lift, dtype="float64"), (N_IN,), input_dtype="float64")
    plain = fj.from_flax(LiftedNet(None, rule in ("dfa", "sdfa", "drtp"), "float64"), (N_IN,), input_dtype="float64")
    params = plain.init(keys(3)[2])
    fb = None if rule == "bp" else fj.init_feedback(keys(4)[3], plain, rule, dtype=F64)
    if isinstance(fb, dict) and rule in ("dfa", "sdfa", "drtp"):
        assert lifted.point_names == ["out"] and plain.point_names == ["DFAPoint_0"]
        fb_lifted = {"out": fb["DFAPoint_0"]}
    else:
        fb_lifted = fb
    want = rule_grads(plain, params, x, labels, rule, fb)
    got = rule_grads(lifted, params, x, labels, rule, fb_lifted)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), got, want)
    assert float(jnp.abs(got["Dense_0"]["kernel"]).sum()) > 0


@pytest.mark.parametrize("rule", ["fa", "kp", "frsf"])
def test_fa_family_on_scanned_kernels_is_refused(rule):
    model = fj.from_flax(ScanNet(), (N_IN,))
    params, x = model.init(jax.random.key(0)), jnp.zeros((2, N_IN))
    msg = refused(lambda: model.apply(params, x, rule=rule, feedback={}),
                  f"rule {rule!r} gives every kernel one feedback matrix B, but layer stack/Dense_0 has a kernel "
                  f"(2, {WIDTH}, {WIDTH}) stacked by a lifted transform")
    assert f"({WIDTH}, {WIDTH}) slice" in msg


def test_a_stacked_vmap_is_refused_under_fa():
    class Ensemble(nn.Module):
        @nn.compact
        def __call__(self, x):
            heads = nn.vmap(Block, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None,
                            out_axes=1, axis_size=2)
            return nn.Dense(N_OUT)(heads()(x).reshape(x.shape[0], -1))

    model = fj.from_flax(Ensemble(), (N_IN,))
    assert model.stacked == ((("VmapBlock_0", "Dense_0"), (2, N_IN, WIDTH), (N_IN, WIDTH)),)
    task = _task()
    refused(lambda: fj.sweep(model, task, rule="fa", seeds=1, steps=1, eval_every=1),
            "layer VmapBlock_0/Dense_0 has a kernel (2, 5, 6) stacked by a lifted transform")


def _task(n=8):
    x = np.linspace(-1, 1, n * N_IN).reshape(n, N_IN)
    return fj.data.from_arrays(x, np.arange(n) % N_OUT, x, np.arange(n) % N_OUT)


@pytest.mark.parametrize("lift", ["scan", "remat", "jit", "vmap"])
def test_pepita_on_a_lifted_block_is_refused(lift):
    model = fj.from_flax(ScanNet() if lift == "scan" else LiftedNet(lift), (N_IN,))
    inner = "stack/Dense_0" if lift == "scan" else "block/Dense_0"
    match = f"rule 'pepita' on a wrapped Flax model: layer {inner} runs inside a recurrent cell or a lifted transform"
    key, task = jax.random.key(0), _task()
    refused(lambda: fj.init_feedback(key, model, "pepita"), match)
    refused(lambda: fj.sweep(model, task, rule="pepita", seeds=1, steps=1, eval_every=1), match)


def test_a_marker_inside_a_lifted_transform_is_refused():
    refused(lambda: fj.from_flax(ScanNet(marker_inside=True), (N_IN,)),
            "DFAPoint stack/DFAPoint_0 is called inside a lifted transform (nn.scan, nn.vmap, nn.remat, nn.jit, ...)")


# -- lifted transforms (NNX): refused when wrapped --------------------------------------------------------

class NNXBlock(nnx.Module):
    def __init__(self, rngs):
        self.lin = nnx.Linear(WIDTH, WIDTH, rngs=rngs)

    def __call__(self, x):
        return jnp.tanh(self.lin(x))


class NNXLifted(nnx.Module):
    def __init__(self, lift, rngs):
        self.lift = lift
        self.a, self.b, self.c = nnx.Linear(N_IN, WIDTH, rngs=rngs), NNXBlock(rngs), nnx.Linear(WIDTH, N_OUT, rngs=rngs)

    def __call__(self, x):
        h = jnp.tanh(self.a(x))
        transform = {"remat": nnx.remat, "jit": nnx.jit,
                     "vmap": lambda f: nnx.vmap(f, in_axes=(None, 0))}[self.lift]
        return self.c(transform(lambda m, h_: m(h_))(self.b, h))


@pytest.mark.parametrize("lift", ["remat", "jit", "vmap"])
def test_nnx_transforms_are_refused_when_wrapped(lift):
    refused(lambda: fj.from_flax(lambda rngs: NNXLifted(lift, rngs), (N_IN,)),
            "a Linear layer is called inside an NNX transform (nnx.scan, nnx.vmap, nnx.remat, nnx.jit, ...)")


# -- integer inputs: token ids stay integer; the model's input dtype is checked against the task's ---------

VOCAB, T = 7, 4


class Bag(nn.Module):
    """Token ids (batch, T) -> Embed -> mean over T -> Dense(N_OUT)."""

    @nn.compact
    def __call__(self, tokens):
        return nn.Dense(N_OUT)(nn.Embed(VOCAB, 8)(tokens).mean(axis=1))


def token_arrays(n=24, dtype=np.int64):
    rng = np.random.default_rng(0)
    return rng.integers(0, VOCAB, (n, T)).astype(dtype), rng.integers(0, N_OUT, n)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.int16])
def test_an_embedding_model_trains_on_integer_arrays(dtype):
    x, y = token_arrays(dtype=dtype)
    task = fj.data.from_arrays(x[:16], y[:16], x[16:], y[16:])
    assert task.x_train.dtype == jnp.int32 and task.x_test.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(task.x_train), x[:16])
    model = fj.from_flax(Bag(), (T,), input_dtype="int32")
    res = fj.sweep(model, task, rule="bp", seeds=1, steps=2, eval_every=2, batch_size=8)
    assert np.isfinite(res.loss).all()


def test_integer_images_and_flags_become_float():
    y = np.arange(6) % 2
    images = np.arange(6 * 2 * 2 * 1).reshape(6, 2, 2, 1).astype(np.uint8)
    for x, kw in ((images, {}), (images.reshape(6, 4), {"input_shape": (2, 2, 1)}), (images.reshape(6, 4) > 3, {})):
        t = fj.data.from_arrays(x, y, x, y, **kw)
        assert t.x_train.dtype == jnp.float32, (x.dtype, x.shape)
    np.testing.assert_array_equal(np.asarray(fj.data.from_arrays(images, y, images, y).x_test), images)


def test_integer_ids_outside_int32_are_refused():
    x, y = token_arrays()
    x[3, 1] = 2**40
    one_line_error(lambda: fj.data.from_arrays(x, y, x, y), f"x_train holds {2**40}, outside int32")


def test_train_and_test_inputs_of_different_kinds_are_both_real():
    x, y = token_arrays()
    t = fj.data.from_arrays(x, y, x.astype(np.float32) + 0.5, y)  # one split real: numeric features
    assert t.x_train.dtype == t.x_test.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(t.x_train), x.astype(np.float32))


def test_the_models_input_dtype_is_checked_against_the_tasks():
    x, y = token_arrays()
    floats = fj.data.from_arrays(x.astype(np.float32), y, x.astype(np.float32), y)
    token_model = fj.from_flax(Bag(), (T,), input_dtype="int32")
    refused(lambda: fj.sweep(token_model, floats, seeds=1, steps=1, eval_every=1),
            "the model takes integer token ids (int32) but task 'arrays' has float32 inputs")
    params, xf = token_model.init(jax.random.key(0)), jnp.zeros((2, T))
    refused(lambda: token_model.apply(params, xf), "input has dtype float32, this model takes integer token ids")


@pytest.mark.parametrize("model", [fj.mlp([T, 8, N_OUT]), fj.from_flax(nn.Dense(N_OUT), (T,))], ids=["mlp", "flax"])
def test_a_real_valued_model_trains_on_integer_features_as_floats(model):
    x, y = token_arrays()
    ints = fj.data.from_arrays(x, y, x, y)
    floats = fj.data.from_arrays(x.astype(np.float32), y, x.astype(np.float32), y)
    a, b = (fj.sweep(model, t, seeds=1, steps=2, eval_every=2, batch_size=8, progress=False) for t in (ints, floats))
    np.testing.assert_array_equal(a.loss, b.loss)  # the same numbers: the integers are cast, as features
    params = model.init(jax.random.key(0))
    np.testing.assert_array_equal(model.apply(params, ints.x_test), model.apply(params, floats.x_test))


# -- NNX: a wrong input shape is the same one-line error as for linen ----------------------------------------

class TwoLayers(nnx.Module):
    def __init__(self, rngs):
        self.a, self.b = nnx.Linear(4, 6, rngs=rngs), nnx.Linear(6, N_OUT, rngs=rngs)

    def __call__(self, x):
        return self.b(jnp.tanh(self.a(x)))


class TwoInputs(TwoLayers):
    def __call__(self, x, mask):
        return self.b(jnp.tanh(self.a(x * mask)))


@pytest.mark.parametrize("module", [TwoLayers(nnx.Rngs(0)), lambda rngs: TwoLayers(rngs)])
def test_nnx_on_a_wrong_input_shape(module):
    refused(lambda: fj.from_flax(module, (5,)),
            "the module does not run on inputs (batch, 5) of float32: dot_general requires contracting dimensions")
    refused(lambda: fj.from_flax(module, (2, 2)), "the module does not run on inputs (batch, 2, 2) of float32")


def test_nnx_with_two_inputs_and_linen_agree():
    class LinenTwoInputs(nn.Module):
        @nn.compact
        def __call__(self, x, mask):
            return nn.Dense(N_OUT)(x * mask)

    for module in (TwoInputs(nnx.Rngs(0)), LinenTwoInputs()):
        refused(lambda m=module: fj.from_flax(m, (4,)), "the module does not run on inputs (batch, 4) of float32: ")


# -- fj.generate with a sweep's params -------------------------------------------------------------------

def test_generate_names_a_leading_seed_axis():
    from fa_jax.analysis.generate import generate
    from fa_jax.wrap.sequence_models import language_model

    model = language_model("gru", VOCAB, T, d_hidden=4)
    one = model.init(jax.random.key(0))
    seeds = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 3))
    prompt = np.arange(T) % VOCAB
    refused(lambda: generate(model, seeds, prompt, 2),
            "generate takes one model's params, but these have a leading seed axis of size 3 (a sweep's "
            "res.state.params): select one seed, e.g. jax.tree.map(lambda a: a[0], res.state.params)")
    two = jax.tree.map(lambda a: jnp.stack([a, a]), seeds)
    refused(lambda: generate(model, two, prompt, 2),
            "these have 2 leading axes (2, 3) before the model's shapes: select one model, e.g. "
            "jax.tree.map(lambda a: a[0, 0], params)")
    refused(lambda: generate(model, {"embed": one["embed"]}, prompt, 2),
            "generate params are not this model's: they have no ['cell_0']")
    refused(lambda: generate(model, [one], prompt, 2), "they are a list, model.init gives a dict")
    bad = {**one, "unembed": {**one["unembed"], "bias": jnp.zeros(VOCAB + 1)}}
    refused(lambda: generate(model, bad, prompt, 2),
            f"generate params are not this model's: ['unembed']['bias'] has shape ({VOCAB + 1},), the model's is "
            f"({VOCAB},)")
    assert generate(model, jax.tree.map(lambda a: a[1], seeds), prompt, 2).shape == (2,)


# -- a train flag under another name --------------------------------------------------------------------

class ModeDropout(nn.Module):
    @nn.compact
    def __call__(self, x, is_train_mode: bool = False):
        return nn.Dense(N_OUT)(nn.Dropout(0.5, deterministic=not is_train_mode)(nn.Dense(8)(x)))


def test_an_unknown_boolean_argument_is_named_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fj.from_flax(ModeDropout(), (N_IN,))
        fj.from_flax(ModeDropout(), (N_IN,))
    msgs = [str(w.message) for w in caught if "is_train_mode" in str(w.message)]
    want = ("ModeDropout.__call__ takes the boolean argument 'is_train_mode', which fj.from_flax never sets (train "
            "flags it finds by name: train, training, is_training, deterministic): if it turns dropout or batch "
            "statistics on, pass fj.from_flax(..., train_arg='is_train_mode')")
    assert msgs == [want], msgs
    assert caught[0].filename == __file__ and not model.stochastic
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = fj.from_flax(ModeDropout(), (N_IN,), train_arg="is_train_mode")
    assert named.stochastic
    params, x = named.init(jax.random.key(0)), jnp.ones((2, N_IN))
    on = named.apply(params, x, train=True, key=jax.random.key(1))
    assert not np.allclose(on, named.apply(params, x))  # dropout acts


# -- refusals that say what the user can do --------------------------------------------------------------

def test_pepita_on_the_bundled_language_models_names_the_token_inputs():
    from fa_jax.wrap.sequence_models import language_model

    key = jax.random.key(0)
    for kind in ("elman", "gru", "transformer"):
        model = language_model(kind, VOCAB, T, **({"d_model": 8, "n_heads": 2} if kind == "transformer" else {}))
        msg = refused(lambda m=model: fj.init_feedback(key, m, "pepita"),
                      "rule 'pepita' on a wrapped Flax model: its inputs are int32 (token ids); PEPITA adds e @ F to "
                      "the input, so it trains models with floating inputs only")
        assert "DFAPoint" not in msg and "remove" not in msg


def test_pepita_on_a_users_markers_names_them():
    class Marked(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(N_OUT)(fj.DFAPoint(name="mid")(jnp.tanh(nn.Dense(8)(x))))

    model, key = fj.from_flax(Marked(), (N_IN,)), jax.random.key(0)
    refused(lambda: fj.init_feedback(key, model, "pepita"),
            "the module places DFAPoint markers (mid), and PEPITA takes its points at the inputs of the weighted "
            "layers only: wrap a version of the module without DFAPoint markers")


def test_drtp_at_a_dfa_output_marker_says_what_to_do():
    from fa_jax.wrap.sequence_models import language_model

    model = language_model("transformer", VOCAB, T, d_model=8, n_heads=2, error_at="last_block")
    params, x = model.init(jax.random.key(0)), jnp.zeros((1, T), jnp.int32)
    fb = fj.init_feedback(jax.random.key(1), model, "drtp")
    refused(lambda: model.apply(params, x, rule="drtp", feedback=fb),
            "rule 'drtp' sends the target, not an error, to the DFA points, so it needs the logits as its output "
            "node, but this model takes the error at its DFAOutput marker 'error': wrap a version of the module "
            "without the DFAOutput marker (language_model('transformer', ...) or TransformerLM: error_at='logits')")
