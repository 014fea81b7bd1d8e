"""The chapter-5 network in Keras 3: build it from the spec, move weights in and out."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from common import canonical
from common.config import validate
from common.spec import Initializer, Spec
from tf_impl.losses import SpecLoss
from tf_impl.optimizers import make_optimizer
from tf_impl.stack import activation, input_shape, stack_layers

# --- section: device ---


def device_name(device: str) -> str:
    """The framework's name for 'cpu' or 'cuda'; a missing GPU is an error, never a fall-back."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not tf.config.list_physical_devices("GPU"):
        raise RuntimeError("device 'cuda' requested but TensorFlow sees no GPU")
    return "/GPU:0" if device == "cuda" else "/CPU:0"


# --- section: initializers ---


def make_initializer(init: Initializer, seed: int) -> keras.initializers.Initializer:
    """The spec's initializer as a Keras initializer, every parameter passed."""
    k = keras.initializers
    if init.name in ("glorot_normal", "he_normal"):
        scale = 1.0 if init.name == "glorot_normal" else 2.0
        mode = "fan_avg" if init.name == "glorot_normal" else "fan_in"
        # TF: "truncated_normal" redraws beyond 2 stddev and pre-divides by 0.8796 (Keras's he_normal does)
        dist = "truncated_normal" if init.truncated else "untruncated_normal"
        return k.VarianceScaling(scale, mode, dist, seed=seed)
    return {
        "uniform": lambda: k.RandomUniform(init.low, init.high, seed=seed),
        "glorot_uniform": lambda: k.VarianceScaling(1.0, "fan_avg", "uniform", seed=seed),
        "he_uniform": lambda: k.VarianceScaling(2.0, "fan_in", "uniform", seed=seed),
        "zeros": lambda: k.Zeros(),
        "constant": lambda: k.Constant(init.value),
    }[init.name]()


# --- section: layers ---


class UnbiasedBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization whose moving variance takes the unbiased batch variance.

    TF: Keras feeds the biased (divide by n) variance; this adds the difference."""

    def call(self, inputs, training=None, mask=None):
        outputs = super().call(inputs, training=training, mask=mask)
        if training:  # the statistics of each channel: over every axis but the last
            axes = list(range(len(inputs.shape) - 1))
            n = tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype)
            _, variance = tf.nn.moments(inputs, axes=axes)
            self.moving_variance.assign_add((1.0 - self.momentum) * variance / (n - 1.0))
        return outputs


def bn_class(layer) -> type:
    """Keras's BatchNormalization, or the unbiased variant, for a batch_norm layer of the spec."""
    return UnbiasedBatchNormalization if layer.running_variance == "unbiased" else keras.layers.BatchNormalization


def activation_layer(spec: Spec) -> keras.layers.Layer:
    net = spec.network  # TF: leaky_relu with the spec's slope in the run's dtype (tf_impl.stack.activation)
    return keras.layers.Activation(activation(net.hidden_activation, net.leaky_relu_slope), name="activation",
                                   dtype=spec.training.dtype)


def batch_norm_layer(spec: Spec) -> keras.layers.Layer:
    bn = spec.network.batch_norm
    # TF: Keras momentum is the weight of the old moving value, as in the spec
    return bn_class(bn)(momentum=bn.momentum, epsilon=bn.epsilon, name="bn", dtype=spec.training.dtype)


# --- section: build_model ---


def build_model(spec: Spec, seed: int | None = None, device: str = "cpu") -> keras.Model:
    """The spec's network, compiled with the spec's loss and optimizer.

    The output layer is linear: it returns the pre-activation z, and the spec's
    output activation is applied inside the loss (tf_impl.losses), so the
    cross-entropy formula is the spec's, not Keras's `_keras_logits` shortcut.
    """
    validate(spec)
    seed = spec.training.seed if seed is None else seed
    if spec.network.chapter_mlp is None:
        built: list[keras.Model] = []  # the masks' step: the optimizer's count, read when a batch runs
        layers = stack_layers(spec, seed, make_initializer, lambda: built[0].optimizer.iterations, bn_class)
        built.append(_compiled(spec, device, [keras.Input(input_shape(spec), dtype=spec.training.dtype), *layers]))
        return built[0]
    net, dtype = spec.network, spec.training.dtype
    dense = lambda units, k, b, name, s: keras.layers.Dense(  # noqa: E731
        units, kernel_initializer=make_initializer(k, s), bias_initializer=make_initializer(b, s + 1),
        name=name, dtype=dtype)
    hidden = [dense(net.hidden_units, net.hidden_kernel_init, net.hidden_bias_init, "hidden", seed)]
    if net.batch_norm.mode == "before_activation":
        hidden += [batch_norm_layer(spec), activation_layer(spec)]
    elif net.batch_norm.mode == "after_activation":
        hidden += [activation_layer(spec), batch_norm_layer(spec)]
    else:
        hidden += [activation_layer(spec)]
    # TF: every layer gets the dtype, or Keras's float32 policy would cast float64 inputs
    return _compiled(spec, device, [keras.Input((28, 28), dtype=dtype), keras.layers.Flatten(dtype=dtype), *hidden,
                                    dense(net.output_units, net.output_kernel_init, net.output_bias_init,
                                          "output", seed + 2)])



def _compiled(spec: Spec, device: str, layers: list) -> keras.Model:
    """A Sequential of `layers`, compiled with the spec's loss, optimizer and accuracy."""
    with tf.device(device_name(device)):
        model = keras.Sequential(layers, name=spec.name)
        model.compile(optimizer=make_optimizer(spec), loss=SpecLoss(spec),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy", dtype=spec.training.dtype)])
        model.optimizer.build(model.trainable_variables)
    model.device = device
    return model


# --- section: get_weights ---


def _variables(model: keras.Model) -> dict[str, tf.Variable]:
    """Canonical name -> variable, in layer order."""
    return {f"{layer.name}/{v.name}": v for layer in model.layers for v in layer.weights}


def get_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout (numpy, kernels (in, out))."""
    return {name: v.numpy().copy() for name, v in _variables(model).items()}


# --- section: set_weights ---


def set_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights (exactly: same bits in the model's dtype); nothing changes
    unless every name and shape fits."""
    variables = _variables(model)
    canonical.check_shapes(weights, {name: tuple(v.shape) for name, v in variables.items()})
    for name, v in variables.items():  # TF: Keras kernels are already (in, out)
        v.assign(np.asarray(weights[name]).astype(v.dtype))
