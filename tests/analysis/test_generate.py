"""fa_jax.analysis.generate: greedy decoding against the model's own logits, sampling as a pure
function of the key, the low-temperature limit, and one-line errors."""

import jax
import numpy as np
import pytest
from error_check import one_line_error

from fa_jax.analysis.generate import generate
from fa_jax.wrap.sequence_models import language_model

CONTEXT, VOCAB = 8, 13


@pytest.fixture(scope="module")
def lm():
    model = language_model("transformer", VOCAB, CONTEXT, d_model=8, n_heads=2, n_blocks=1)
    params = model.init(jax.random.key(3))
    prompt = np.arange(CONTEXT, dtype=np.int32) % VOCAB
    return model, params, prompt


def test_greedy_follows_the_last_position_argmax_step_by_step(lm):
    model, params, prompt = lm
    out = generate(model, params, prompt, 4)
    assert out.shape == (4,) and out.dtype == np.int32
    window = prompt.copy()
    for tok in out:  # the reference: one apply per step, in Python
        logits = np.asarray(model.apply(params, window[None]))[0, -1]
        assert tok == int(np.argmax(logits))
        window = np.concatenate([window[1:], [tok]])
    assert np.array_equal(generate(model, params, prompt, 4), out)  # deterministic
    assert np.array_equal(generate(model, params, list(prompt), 2), out[:2])  # a list prompt


def test_sampling_is_a_pure_function_of_the_key(lm):
    model, params, prompt = lm
    a = generate(model, params, prompt, 24, key=jax.random.key(0), temperature=1.0)
    assert np.array_equal(a, generate(model, params, prompt, 24, key=jax.random.key(0), temperature=1.0))
    assert not np.array_equal(a, generate(model, params, prompt, 24, key=jax.random.key(1), temperature=1.0))
    assert a.min() >= 0 and a.max() < VOCAB
    cold = generate(model, params, prompt, 6, key=jax.random.key(5), temperature=1e-6)
    assert np.array_equal(cold, generate(model, params, prompt, 6))


@pytest.mark.parametrize("kw,match", [
    ({"n_new": 0}, "generate n_new must be a positive int, got 0"),
    ({"n_new": 2.0}, "generate n_new must be a positive int"),
    ({"temperature": -0.5}, "temperature must be a finite number >= 0 (0: greedy), got -0.5"),
    ({"temperature": float("nan")}, "temperature must be a finite number >= 0"),
    ({"temperature": 0.8}, "generate temperature=0.8 samples: pass key="),
    ({"prompt": np.zeros(CONTEXT - 1, np.int32)}, "prompt has 7 tokens; the model reads windows of exactly 8"),
    ({"prompt": np.zeros((1, CONTEXT), np.int32)}, "prompt must be a 1-D array of integer token ids"),
    ({"prompt": np.full(CONTEXT, VOCAB)}, f"prompt holds {VOCAB}, not a token id of this model's {VOCAB}"),
])
def test_bad_arguments_are_one_line_errors(lm, kw, match):
    model, params, prompt = lm
    args = {"prompt": prompt, "n_new": 3, **kw}
    one_line_error(lambda: generate(model, params, args.pop("prompt"), args.pop("n_new"), **args), match)


def test_a_model_without_token_windows_is_refused():
    import fa_jax as fj

    one_line_error(lambda: generate(fj.mlp([4, 3]), None, np.zeros(4, np.int32), 1),
                   "generate needs a model whose input is (batch, context) token ids")
