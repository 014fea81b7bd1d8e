"""The spec's loss in TensorFlow: output activation and formula written out."""
from __future__ import annotations

import keras
import tensorflow as tf

from common.spec import Spec

# --- section: output_activation ---


def output_activation(spec: Spec, z: tf.Tensor) -> tf.Tensor:
    """Probabilities (or outputs) from the output layer's pre-activation z."""
    return {"sigmoid": tf.sigmoid, "softmax": tf.nn.softmax, "linear": tf.identity, "log_softmax": tf.nn.log_softmax}[
        spec.network.output_activation](z)


# --- section: per_example_loss ---


def per_example_loss(spec: Spec, t: tf.Tensor, z: tf.Tensor) -> tf.Tensor:
    """Loss of each example, from one-hot targets t and pre-activations z."""
    loss, p = spec.loss, output_activation(spec, z)
    if loss.name == "mse":
        return tf.reduce_mean(tf.square(t - p), axis=-1)
    if loss.name == "nll":  # TF: Keras has no NLL loss; p holds log-probabilities
        return -tf.reduce_sum(t * p, axis=-1)
    eps = tf.constant(loss.epsilon, z.dtype)
    if loss.name == "binary_crossentropy":
        if loss.formula == "logits":
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=z), axis=-1)
        p = tf.clip_by_value(p, eps, 1.0 - eps)  # TF: Keras's formula for probabilities
        return -tf.reduce_mean(t * tf.math.log(p) + (1.0 - t) * tf.math.log(1.0 - p), axis=-1)
    if loss.formula == "logits":
        return tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=z)
    p = tf.clip_by_value(p / tf.reduce_sum(p, axis=-1, keepdims=True), eps, 1.0 - eps)
    return -tf.reduce_sum(t * tf.math.log(p), axis=-1)


# --- section: loss_function ---


class SpecLoss(keras.losses.Loss):
    """The spec's loss averaged over the batch, for `model.compile`."""

    def __init__(self, spec: Spec):
        # TF: dtype given, or Keras would cast float64 predictions to float32
        super().__init__(name=spec.loss.name, reduction="sum_over_batch_size", dtype=spec.training.dtype)
        self.spec = spec

    def call(self, y_true, y_pred):
        return per_example_loss(self.spec, y_true, y_pred)


def one_hot(spec: Spec, y) -> tf.Tensor:
    """One-hot targets in the spec's dtype from integer labels."""
    return tf.one_hot(tf.cast(y, tf.int64), spec.network.output_units, dtype=spec.training.dtype)
