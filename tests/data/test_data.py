"""Embedded tasks: parity, XOR, digits."""

import jax
import numpy as np
import pytest

import fa_jax as fj


def test_parity_labels_are_products_of_the_subset():
    task = fj.data.parity(12, 3, data_seed=5)
    s = np.asarray(task.aux["subset"])
    assert s.shape == (3,) and len(set(s)) == 3
    x, y = jax.jit(task.sample, static_argnums=1)(jax.random.key(0), 256)
    assert x.shape == (256, 12) and set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_array_equal(y, np.prod(np.asarray(x)[:, s], axis=1))
    np.testing.assert_array_equal(task.y_test, np.prod(np.asarray(task.x_test)[:, s], axis=1))
    assert 0.4 < float((y > 0).mean()) < 0.6
    x2, _ = task.sample(jax.random.key(1), 256)
    assert not np.array_equal(x, x2)  # fresh samples per key
    assert task.n_train is None


def test_parity_fixed_training_set_and_determinism():
    a, b = fj.data.parity(10, 2, n_train=100), fj.data.parity(10, 2, n_train=100)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.n_train == 100
    x, y = a.sample(jax.random.key(0), 32)
    rows = {tuple(r) for r in np.asarray(a.x_train)}
    assert all(tuple(r) in rows for r in np.asarray(x))
    full_x, _ = a.sample(jax.random.key(0), 500)
    assert full_x.shape == (100, 10)  # batch >= n_train: full batch


@pytest.mark.parametrize("args,match", [((5, 6), r"k=6 > n=5"), ((0, 1), "n must be a positive int"),
                                        ((5, 0), "k must be a positive int")])
def test_parity_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        fj.data.parity(*args)


def test_xor():
    t = fj.data.xor()
    np.testing.assert_array_equal(t.y_test, [-1, 1, 1, -1])


def test_digits_split_and_labels():
    t = fj.data.digits("class")
    assert t.x_train.shape[1] == 64 and t.n_out == 10
    assert t.x_train.shape[0] + t.x_test.shape[0] == 1797
    np.testing.assert_allclose(np.asarray(t.x_train).mean(0), 0, atol=1e-5)
    p = fj.data.digits("parity")
    assert p.n_out == 1 and set(np.unique(p.y_test)) == {-1.0, 1.0}
    # parity label is +1 exactly for even digits
    np.testing.assert_array_equal(p.y_test > 0, np.asarray(t.y_test) % 2 == 0)
    np.testing.assert_array_equal(fj.data.digits("class").x_test, t.x_test)  # deterministic split
    with pytest.raises(ValueError, match="unknown digits label 'odd'"):
        fj.data.digits("odd")
