"""Gradients, one training step, evaluation and the book's `model.fit` loop in Keras 3."""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from common import canonical, interrupts
from common.epochs import fit_epochs
from common.spec import Spec
from tf_impl.losses import SpecLoss, one_hot, per_example_loss
from tf_impl.model import device_name, get_weights, set_weights
from tf_impl.optimizers import update, use_schedule
from tf_impl.stack import as_batch

# --- section: inputs ---


def as_inputs(spec: Spec, x: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) in the spec's dtype from (N, 28, 28) or (N, 784); for any other stack
    (N, *input_shape), NHWC images."""
    if spec.network.chapter_mlp is None:
        return as_batch(spec, x)
    return np.asarray(x, dtype=spec.training.dtype).reshape(-1, 28, 28)


# --- section: loss_and_gradients ---


def loss_and_gradients(model: keras.Model, spec: Spec, x: np.ndarray, y: np.ndarray
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and canonical gradients on one batch in training mode; the weights,
    batch-norm moving statistics included, are left unchanged."""
    moving = {k: v for k, v in get_weights(model).items() if canonical.is_moving(k)}
    with tf.device(device_name(model.device)), tf.GradientTape() as tape:
        z = model(as_inputs(spec, x), training=True)
        loss = SpecLoss(spec)(one_hot(spec, y), z)
    grads = tape.gradient(loss, model.trainable_variables)
    if moving:
        set_weights(model, {**get_weights(model), **moving})
    names = canonical.trainable_names(spec)  # TF: trainable_variables are in layer order
    return float(loss), {n: g.numpy() for n, g in zip(names, grads)}


# --- section: train_step ---


def train_batch(model: keras.Model, spec: Spec, xb: tf.Tensor, tb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One step of the book's optimizer on a batch of tensors (what Keras's train_step does
    per batch): the batch's mean loss and the outputs before the update."""
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        z = model(xb, training=True)
        loss = tf.reduce_mean(per_example_loss(spec, tb, z))
    update(model.optimizer, tape.gradient(loss, variables), variables)  # the book optimizer's own step
    return loss, z


def train_step(model: keras.Model, spec: Spec, x: np.ndarray, y: np.ndarray) -> float:
    """One optimizer step on one batch, the way `fit` takes it; returns the batch loss."""
    with tf.device(device_name(model.device)):
        model.reset_metrics()  # TF: Keras < 3.15's train_on_batch reports the running mean over earlier calls
        logs = model.train_on_batch(as_inputs(spec, x), one_hot(spec, y), return_dict=True)
    return float(logs["loss"])


# --- section: evaluate ---


def evaluate(model: keras.Model, spec: Spec, x: np.ndarray, y: np.ndarray,
             batch_size: int = 1000) -> tuple[float, float]:
    """Loss and accuracy in inference mode (batch-norm moving statistics)."""
    with tf.device(device_name(model.device)):
        logs = model.evaluate(as_inputs(spec, x), one_hot(spec, y), batch_size=batch_size,
                              verbose=0, return_dict=True)
    return float(logs["loss"]), float(logs["accuracy"])


# --- section: fit ---


class _Progress(keras.callbacks.Callback):
    """TF: a tqdm bar fed by Keras's batch callbacks (Keras's own bar has another format); and a
    Ctrl-C (common.interrupts) stops `fit` after the batch, outside TF's device scope."""

    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1) if self.bar else None
        if interrupts.requested():
            self.model.stop_training = True  # TF: Keras ends its batch loop; check() raises after fit returns


def fit(model: keras.Model, spec: Spec, data: tuple, epochs: int | None = None, initial_epoch: int = 0,
        on_epoch: Callable[[dict], None] | None = None, progress=None) -> list[dict]:
    """Train with `model.fit`, one call per epoch on the epoch's shared shuffle order.

    data: (x_train, y_train, x_eval, y_eval); epochs run from initial_epoch to `epochs`
    (the spec's by default), as Keras counts them. Returns one dict per epoch with
    epoch, loss, accuracy (running means over the epoch, as Keras reports them),
    val_loss, val_accuracy and seconds (training time of the epoch): common.epochs.
    """
    x, y, x_eval, y_eval = data
    x, t = as_inputs(spec, x), one_hot(spec, y).numpy()
    use_schedule(model, spec, len(x), initial_epoch)  # TF: a decaying rate reads the optimizer's step count

    def train_epoch(order: np.ndarray, bar) -> tuple[float, float]:
        with tf.device(device_name(model.device)):
            # TF: shuffle=False because both frameworks use the order drawn above
            logs = model.fit(x[order], t[order], batch_size=spec.training.batch_size, epochs=1,
                             shuffle=False, verbose=0, callbacks=[_Progress(bar)]).history
        interrupts.check()  # outside the device scope
        return logs["loss"][0], logs["accuracy"][0]
    return fit_epochs(spec, len(x), train_epoch, lambda: evaluate(model, spec, x_eval, y_eval), epochs,
                      initial_epoch, on_epoch, progress)
