"""Any layer stack of the spec (common.stack) as Keras layers: Keras's own Conv2D, MaxPooling2D,
Flatten, Dense, BatchNormalization and Activation, and the one dropout layer Keras has no form
of: dropout with twinbench's shared masks (common.masks)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from common import masks
from common.stack import walk
from common.spec import Spec

# --- section: shared_dropout ---


def _fmix32(h: tf.Tensor) -> tf.Tensor:
    """common.masks.fmix32 on uint64 tensors holding 32-bit values."""
    m32 = tf.constant(masks.M32, tf.uint64)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(16, tf.uint64)))
    h = tf.bitwise.bitwise_and(h * tf.constant(0x85EBCA6B, tf.uint64), m32)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(13, tf.uint64)))
    h = tf.bitwise.bitwise_and(h * tf.constant(0xC2B2AE35, tf.uint64), m32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(16, tf.uint64)))


def step_key(seed: int, step: tf.Tensor, layer: int) -> tf.Tensor:
    """common.masks.step_key(seed, step, layer) with the step a tensor (the optimizer's count)."""
    h = tf.constant(0, tf.uint64)
    for part in (tf.constant(seed & masks.M32, tf.uint64), tf.cast(step, tf.uint64), tf.constant(layer, tf.uint64)):
        h = _fmix32(tf.bitwise.bitwise_and(h * tf.constant(masks.GOLDEN, tf.uint64) + part + 1,
                                           tf.constant(masks.M32, tf.uint64)))
    return h


def keep_mask(key: tf.Tensor, shape: tf.Tensor, rate: float, dtype) -> tf.Tensor:
    """common.masks.keep_mask, computed where the tensor lives."""
    i = tf.range(tf.reduce_prod(tf.cast(shape, tf.int64)), dtype=tf.int64)
    h = _fmix32(tf.bitwise.bitwise_and(tf.cast(i, tf.uint64) * tf.constant(masks.GOLDEN, tf.uint64) + key,
                                       tf.constant(masks.M32, tf.uint64)))
    keep = tf.bitwise.right_shift(h, tf.constant(8, tf.uint64)) >= tf.constant(masks.threshold(rate), tf.uint64)
    return tf.reshape(tf.cast(keep, dtype), shape)


class SharedDropout(keras.layers.Layer):
    """Dropout whose mask at training step t is common.masks' (seed, t, layer): the same inputs
    dropped as in PyTorch. TF: keras.layers.Dropout draws its own mask and takes none."""

    def __init__(self, rate: float, seed: int, index: int, step, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed, self.index, self.step = rate, seed, index, step  # step: () -> the step count

    def call(self, inputs, training=None):
        if not training:
            return inputs
        mask = keep_mask(step_key(self.seed, self.step(), self.index), tf.shape(inputs), self.rate, inputs.dtype)
        return inputs * mask / tf.constant(1.0 - self.rate, inputs.dtype)


def flatten_permutation(height: int, width: int, channels: int) -> np.ndarray:
    """TF: Keras flattens NHWC images in the canonical order: the identity."""
    return np.arange(height * width * channels)


def flat_orders(net) -> tuple:
    """Each layer's input order: always the canonical one in Keras (TF: no permutation)."""
    return (None,) * len(net.layers)


# --- section: stack_layers ---


def activation(name: str, slope: float):
    """A Keras activation; leaky_relu with the spec's slope, in the layer's dtype."""
    if name == "leaky_relu":  # TF: Keras 3's LeakyReLU defaults to slope 0.3; tf.nn.leaky_relu rounds it to float32
        return lambda x: tf.where(x > 0, x, tf.constant(slope, x.dtype) * x)
    return None if name == "linear" else name


def stack_layers(spec: Spec, seed: int, make_initializer, step, bn_class) -> list[keras.layers.Layer]:
    """The stack's layers, named as common.stack names them; the last layer linear (its activation
    is the loss's output activation). step: () -> the optimizer's step count, for the masks;
    bn_class(layer): the Keras batch-norm class of its running-variance convention."""
    walked, dtype, out = walk(spec.network), spec.training.dtype, []
    for k, w in enumerate(walked):
        lay, name = w.layer, w.name
        act = None if k == len(walked) - 1 else activation(getattr(lay, "activation", "linear"),
                                                           getattr(lay, "leaky_relu_slope", 0.0))
        s = seed + 2 * k  # a seed per layer, as the MLP's hidden/output take seed and seed + 2
        init = {} if not hasattr(lay, "kernel_init") else {
            "kernel_initializer": make_initializer(lay.kernel_init, s),
            "bias_initializer": make_initializer(lay.bias_init, s + 1)}
        common = {"name": name, "dtype": dtype}
        out.append({
            "dense": lambda: keras.layers.Dense(lay.units, activation=act, **init, **common),
            "conv2d": lambda: keras.layers.Conv2D(lay.filters, lay.kernel_size, lay.strides, lay.padding,
                                                  activation=act, **init, **common),
            "max_pool2d": lambda: keras.layers.MaxPooling2D(lay.pool_size, lay.strides, "valid", **common),
            "flatten": lambda: keras.layers.Flatten(**common),  # TF: NHWC order, the canonical one
            "dropout": lambda: SharedDropout(lay.rate, seed, k, step, **common),
            "batch_norm": lambda: bn_class(lay)(momentum=lay.momentum, epsilon=lay.epsilon, **common),
            "activation": lambda: keras.layers.Activation(act or "linear", **common),
        }[lay.type]())
    return out


def input_shape(spec: Spec) -> tuple[int, ...]:
    return tuple(spec.network.input_shape)


def as_batch(spec: Spec, x: np.ndarray) -> np.ndarray:
    """Inputs in the spec's dtype, shaped (N, *input_shape) (NHWC images)."""
    return np.asarray(x, dtype=spec.training.dtype).reshape(-1, *spec.network.input_shape)


# --- section: canonical_layout ---


def to_canonical(spec: Spec, name: str, v: tf.Tensor) -> tf.Tensor:
    """A variable (or its gradient, or an optimizer slot) in the canonical layout. TF: Keras's
    layouts are the canonical ones (dense (in, out), conv HWIO, NHWC flatten order)."""
    return v


def from_canonical(spec: Spec, name: str, v: np.ndarray) -> np.ndarray:
    """The inverse of to_canonical: the canonical layout in Keras's (TF: the same)."""
    return v
