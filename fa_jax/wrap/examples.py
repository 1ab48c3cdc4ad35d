"""Bundled ``flax.linen`` example models for :func:`fa_jax.from_flax` (``experiments/flax_models.py``).

Plain linen, nothing fa_jax-specific but the optional :class:`fa_jax.DFAPoint` markers: any
linen model written the same way wraps the same way. Inputs are NHWC images
``(batch, H, W, C)``; outputs are logits ``(batch, n_out)``.

- :class:`MNISTCNN`: the CNN of the flax examples' MNIST tutorial (``width`` scales its channels).
- :class:`ResNet`: a small ResNet with batch norm (basic blocks, ``__call__(x, train=False)``);
  ``dfa_blocks=True`` puts a :class:`fa_jax.DFAPoint` after every block ("macro" DFA).

:data:`EXAMPLES` maps a name to a constructor ``f(n_out, **fields) -> module``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import flax.linen as nn

from fa_jax.wrap.linen import DFAPoint

if TYPE_CHECKING:
    import jax


def _channels(n: int, width: float) -> int:
    return max(1, round(n * width))


class MNISTCNN(nn.Module):
    """The flax examples' MNIST CNN: Conv(32, 3x3) → relu → avg_pool(2, 2) → Conv(64, 3x3) → relu →
    avg_pool(2, 2) → flatten → Dense(256) → relu → Dense(n_out); SAME padding.

    Fields: ``n_out`` (classes, default 10); ``width`` (multiplier of the 32, 64 and 256,
    default 1.0: the flax example). Input ``(batch, H, W, C)``, e.g. (batch, 28, 28, 1) for MNIST
    or (batch, 8, 8, 1) for the 8x8 digits; the dense layer sees ``(H/4)·(W/4)·64·width``
    features (3136 on MNIST, 256 on digits at width 1). Output: logits ``(batch, n_out)``.
    """

    n_out: int = 10
    width: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = functools.partial(_channels, width=self.width)
        x = nn.Conv(features=c(32), kernel_size=(3, 3))(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.Conv(features=c(64), kernel_size=(3, 3))(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))  # flatten
        x = nn.Dense(features=c(256))(x)
        x = nn.relu(x)
        return nn.Dense(features=self.n_out)(x)


class ResNetBlock(nn.Module):
    """A basic residual block: ``relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x))``.

    The shortcut is ``x`` itself, or ``BN(conv1x1(x))`` when the stride or channel count
    changes. Input ``(batch, H, W, C_in)``; output ``(batch, H/strides, W/strides, features)``.
    ``dfa_point``: end with a :class:`fa_jax.DFAPoint` (the block's output is a DFA point).
    """

    features: int
    strides: int = 1
    dfa_point: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
        s = (self.strides, self.strides)
        y = nn.Conv(self.features, (3, 3), strides=s, use_bias=False)(x)
        y = nn.relu(norm()(y))
        y = nn.Conv(self.features, (3, 3), use_bias=False)(y)
        y = norm()(y)
        if x.shape != y.shape:
            x = norm()(nn.Conv(self.features, (1, 1), strides=s, use_bias=False)(x))
        y = nn.relu(x + y)
        return DFAPoint()(y) if self.dfa_point else y


class ResNet(nn.Module):
    """A small ResNet for small images: conv3x3(width) → BN → relu, then ``len(stage_sizes)``
    stages of basic blocks (:class:`ResNetBlock`; stage i has ``width·2^i`` channels and
    ``stage_sizes[i]`` blocks, the first of every stage but the first with stride 2), global
    average pooling, Dense(n_out).

    Fields: ``n_out`` (default 10), ``width`` (channels of the stem and first stage, default 16),
    ``stage_sizes`` (blocks per stage, default (1, 1, 1): 7 convs plus two 1x1 shortcut convs),
    ``dfa_blocks`` (a :class:`fa_jax.DFAPoint` after every block: DFA's error enters at block
    outputs and BP runs inside each block, Launay et al. 2020; default False: DFA's default points,
    the input of every weighted layer after the first).
    ``__call__(x, train=False)``: ``train`` selects batch statistics (True) or the running ones.
    Input ``(batch, H, W, C)``; output logits ``(batch, n_out)``.
    """

    n_out: int = 10
    width: int = 16
    stage_sizes: tuple = (1, 1, 1)
    dfa_blocks: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = nn.Conv(self.width, (3, 3), use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x))
        for i, n_blocks in enumerate(self.stage_sizes):
            for j in range(n_blocks):
                x = ResNetBlock(self.width * 2 ** i, strides=2 if i > 0 and j == 0 else 1,
                                dfa_point=self.dfa_blocks)(x, train)
        x = x.mean(axis=(1, 2))  # global average pooling
        return nn.Dense(self.n_out)(x)


EXAMPLES = {
    "mnist_cnn": MNISTCNN,
    "resnet": ResNet,
    "resnet_blocks": functools.partial(ResNet, dfa_blocks=True),
}
"""{name: constructor}: ``EXAMPLES[name](n_out, **fields)`` makes the linen module."""
