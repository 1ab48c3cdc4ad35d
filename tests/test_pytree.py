"""fa_jax.pytree: frozen dataclasses registered as pytrees (leaves vs static fields), as flax.struct makes them."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import pytest

from fa_jax import pytree


@pytree.dataclass
class Pair:
    a: jax.Array
    b: jax.Array
    name: str = pytree.field(pytree_node=False, default="pair")


def test_leaves_static_fields_replace_and_frozen():
    p = Pair(jnp.ones(2), jnp.zeros(3))
    assert [x.shape for x in jax.tree.leaves(p)] == [(2,), (3,)]
    q = jax.tree.map(lambda x: x + 1, p)
    assert isinstance(q, Pair) and q.name == "pair"
    chex.assert_trees_all_close(q.b, jnp.ones(3))
    r = p.replace(name="other")
    assert r.name == "other" and p.name == "pair" and r.a is p.a
    assert jax.tree.structure(p) != jax.tree.structure(r)  # static fields are part of the structure
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "x"


def test_static_fields_key_the_jit_cache_and_vmap_maps_the_leaves():
    traces = []

    @jax.jit
    def f(p):
        traces.append(p.name)
        return p.a.sum() + p.b.sum()

    p = Pair(jnp.ones(2), jnp.ones(3))
    f(p)
    f(p.replace(a=jnp.zeros(2)))
    f(p.replace(name="other"))
    assert traces == ["pair", "other"]
    batched = Pair(jnp.ones((4, 2)), jnp.ones((4, 3)))
    assert jax.vmap(lambda p: p.a.sum() + p.b.sum())(batched).shape == (4,)


def test_all_static_dataclass_is_hashable():
    @pytree.dataclass(kw_only=True)
    class Spec:
        sizes: tuple = pytree.field(pytree_node=False)

    assert hash(Spec(sizes=(1, 2))) == hash(Spec(sizes=(1, 2))) and jax.tree.leaves(Spec(sizes=(1, 2))) == []
