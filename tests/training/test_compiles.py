"""No recompilation across seeds, learning rates, or repeated calls with the same shapes."""

import fa_jax as fj
from fa_jax.training.compiles import count_compiles

TASK = fj.data.parity(8, 2)
MODEL = fj.mlp([8, 16, 1])
KW = dict(steps=40, batch_size=8, eval_every=20, progress=False, rule="dfa", optimizer="sgd")


def test_sweep_compiles_once_per_configuration():
    with count_compiles() as first:
        fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=0.1, **KW)
    assert first.count >= 1  # the counter sees compilations
    with count_compiles() as again:
        fj.sweep(MODEL, TASK, seeds=[5, 6, 7], lr=[0.01, 0.02, 0.03], **KW)  # other seeds and rates
        fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=0.1, **KW)                 # a repeat
    assert again.count == 0, f"{again.count} recompilations"
    with count_compiles() as other_shape:
        fj.sweep(MODEL, TASK, seeds=[0, 1, 2], lr=0.1, **{**KW, "batch_size": 16})
    assert other_shape.count >= 1  # a new shape does compile (the counter is not blind)


def test_init_program_compiled_for_one_run_draws_the_same_bits():
    """The parameter and feedback draws compiled with RUN_ONCE_OPTIONS equal the default
    compilation's to rounding (conv layers, FA- and DFA-family feedback). Without the tests'
    XLA_FLAGS (optimization level 0) they are the same bits on x86 (docs/performance.md); with
    them, U(-a, a) draws may differ by an ulp of ``a`` (a multiply-add fused or not)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fa_jax.training.compiles import RUN_ONCE_OPTIONS, compile_once_run
    from fa_jax.training.state import init_state

    model = fj.cnn.lecture_cnn((8, 8, 1), 10, width=0.25)
    tx = fj.optimizer("adam", 1e-3)
    keys = jax.vmap(jax.random.key)(jnp.arange(3, dtype=jnp.uint32))
    for rule in ("fa", "dfa", "kp"):
        f = jax.jit(jax.vmap(lambda k, r=rule: init_state(k, model, r, tx)))
        quick, seconds = compile_once_run(f, keys)
        assert seconds > 0 and RUN_ONCE_OPTIONS
        a, b = f.lower(keys).compile()(keys), quick(keys)
        for x, y in zip(jax.tree.leaves((a.params, a.feedback, a.opt_state)),
                        jax.tree.leaves((b.params, b.feedback, b.opt_state))):
            x, y = np.asarray(x), np.asarray(y)
            assert x.shape == y.shape and np.max(np.abs(x - y), initial=0) <= 4e-7 * np.max(np.abs(x), initial=1)


def test_sweep_reports_the_init_compile_apart():
    model = fj.mlp([8, 12, 1])
    first = fj.sweep(model, TASK, seeds=2, lr=0.1, **KW)
    again = fj.sweep(model, TASK, seeds=[3, 4], lr=0.1, **KW)
    assert first.init_compile_s > 0 and first.compile_s > 0
    assert again.init_compile_s < first.init_compile_s  # the same program, not compiled again
