"""The fast variant in TensorFlow: a whole epoch as one XLA-compiled graph, same math as the book.

XLA's persistent cache and the threads the compiled epoch runs with are set in
tf_impl.compiled, imported here before TF's runtime starts.
"""
from __future__ import annotations

import time
import warnings
import weakref
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from common.config import step_key
from common.data import epoch_permutation
from common.history import check_epoch
from common.spec import Spec
from tf_impl import compiled  # sets XLA's cache and TF's threads at import, before TF's runtime starts
from tf_impl.losses import one_hot, per_example_loss
from tf_impl.model import device_name
from tf_impl.optimizers import update
from tf_impl.training import as_inputs, evaluate

UNROLL = 4  # steps per while-loop iteration (more: fewer loop tests, a longer compile)
_RUNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(step_key(spec), n): compiled epoch}


# --- section: compile_epoch ---


def compile_epoch(model: keras.Model, spec: Spec, n_examples: int) -> Callable:
    """A function (x, t, order) -> (loss_sum, correct) that trains one epoch on device.

    The steps run in a `tf.while_loop` inside one XLA-compiled `tf.function`:
    no Python, no host round trip and no tf.data between steps.
    """
    cached, key = _RUNS.setdefault(model, {}), (step_key(spec), n_examples)
    if key in cached:  # TF: a new tf.function would be traced and XLA-compiled again
        return cached[key]
    if model.device == "cpu" and not compiled._threads_chosen():
        warnings.warn("tf_impl.fast: TensorFlow's runtime started before tf_impl.fast was imported, with its "
                      "default intra-op threads, and XLA splits the step's kernels across them (conf1 about 2x "
                      "slower); import tf_impl.fast first or set TF_NUM_INTRAOP_THREADS=1", RuntimeWarning,
                      stacklevel=2)
    bs = spec.training.batch_size
    full, tail = divmod(n_examples, bs)
    variables = model.trainable_variables

    def step(xb, tb):
        with tf.GradientTape() as tape:
            z = model(xb, training=True)
            loss = tf.reduce_mean(per_example_loss(spec, tb, z))
        update(model.optimizer, tape.gradient(loss, variables), variables)  # the book optimizer's own step
        correct = tf.reduce_sum(tf.cast(tf.argmax(z, -1) == tf.argmax(tb, -1), z.dtype))
        return loss * tf.cast(tf.shape(xb)[0], z.dtype), correct

    @tf.function(jit_compile=True)  # TF: XLA fuses the step's ops and compiles the whole loop
    def run(x, t, order):
        x, t = tf.gather(x, order), tf.gather(t, order)  # the epoch's order, gathered once on device
        zero = tf.zeros((), x.dtype)

        def body(i, loss_sum, correct, steps=1):
            for k in range(steps):  # unrolled: one loop test per `steps` steps
                # TF: tf.slice with a static size keeps shapes static, so XLA compiles one step
                j = (i + k) * bs
                loss, c = step(tf.slice(x, [j, 0, 0], [bs, 28, 28]), tf.slice(t, [j, 0], [bs, -1]))
                loss_sum, correct = loss_sum + loss, correct + c
            return i + steps, loss_sum, correct
        state = (0, zero, zero)
        if UNROLL > 1:
            state = tf.while_loop(lambda i, *_: i + UNROLL <= full, lambda *a: body(*a, steps=UNROLL), state)
        _, loss_sum, correct = tf.while_loop(lambda i, *_: i < full, body, state)
        if tail:  # the last, smaller batch
            loss, c = step(x[full * bs:], t[full * bs:])
            loss_sum, correct = loss_sum + loss, correct + c
        return loss_sum, correct
    cached[key] = run
    return run


# --- section: fit ---


def fit(model: keras.Model, spec: Spec, data: tuple, epochs: int | None = None, initial_epoch: int = 0,
        on_epoch: Callable[[dict], None] | None = None, progress=None) -> list[dict]:
    """Train like `tf_impl.fit` (same order, same updates), one compiled graph per epoch.

    The graph is traced and compiled in the first epoch. A progress bar, if given, advances
    once per epoch (there is no Python per step)."""
    x, y, x_eval, y_eval = data
    n = len(x)
    with tf.device(device_name(model.device)):
        xs = tf.constant(as_inputs(spec, x))  # TF: data copied to the device once
        ts = one_hot(spec, y)
        run = compile_epoch(model, spec, n)
        history = []
        for epoch in range(initial_epoch, epochs or spec.training.epochs):
            order = epoch_permutation(spec.training.seed, epoch, n) if spec.training.shuffle else np.arange(n)
            bar = progress(epoch) if progress else None
            start = time.perf_counter()
            loss_sum, correct = run(xs, ts, tf.constant(order, tf.int32))
            loss_sum, correct = float(loss_sum), float(correct)  # TF: the only host sync of the epoch
            seconds = time.perf_counter() - start
            if bar:
                bar.update(-(-n // spec.training.batch_size))
                bar.close()
            val_loss, val_acc = evaluate(model, spec, x_eval, y_eval)
            row = {"epoch": epoch + 1, "loss": loss_sum / n, "accuracy": correct / n,
                   "val_loss": val_loss, "val_accuracy": val_acc, "seconds": seconds}
            history.append(row)
            on_epoch(row) if on_epoch else None
            check_epoch(spec, row)  # a non-finite loss ends the run here (common.history.Diverged)
    return history
