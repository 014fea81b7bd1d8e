"""The fast variant in TensorFlow: a whole epoch as one compiled graph, same math as the book.

The epoch is built, before the first one trains, by the first of tf_impl.compiled's tiers
that works (common.tiers), public APIs first: the XLA-compiled `tf.function`, a plain TF
graph, the book's step from Python. Each passed a self-check against the book's step.
"""
from __future__ import annotations

import weakref
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from common.config import step_key
from common.epochs import fit_epochs
from common.spec import Spec
from common.tiers import first_working
from tf_impl import compiled
from tf_impl.losses import one_hot
from tf_impl.model import device_name
from tf_impl.optimizers import use_schedule
from tf_impl.training import as_inputs, evaluate

_EPOCHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(step_key(spec), n): epoch}

# --- section: compile_epoch ---


def epoch_inputs(model: keras.Model, spec: Spec, x: np.ndarray, y: np.ndarray) -> tuple:
    """(x, t): the training images and one-hot targets as the epoch takes them, on the model's device."""
    with tf.device(device_name(model.device)):
        return tf.constant(as_inputs(spec, x)), one_hot(spec, y)


def compile_epoch(model: keras.Model, spec: Spec, n_examples: int) -> Callable:
    """epoch(x, t, order, n_steps=None, first=0) -> (loss_sum, correct): one epoch trained on the
    model's device, built (and compiled) now by the first tier that works; `.tier` names it.

    x, t: from `epoch_inputs`; order: the epoch's permutation (numpy). n_steps and first: only full
    batches first .. n_steps - 1 (the short last batch too when n_steps is every full batch), for
    checking the loop that is timed. Built once per model and step (`step_key`: another seed or
    name is the same step).
    """
    built = _EPOCHS.setdefault(model, {})
    key = (step_key(spec), n_examples)
    if key not in built:  # TF: the epoch closes over the model's variables; a new one is traced and compiled
        with tf.device(device_name(model.device)):
            epoch, tier = first_working(compiled.tiers(model, spec, n_examples), "tf_impl.fast")

        def run(x, t, order: np.ndarray, n_steps: int | None = None, first: int = 0) -> tuple[float, int]:
            with tf.device(device_name(model.device)):
                return epoch(x, t, order, n_examples // spec.training.batch_size if n_steps is None else n_steps,
                             first)
        run.tier = tier
        built[key] = run
    return built[key]


# --- section: fit ---


def fit(model: keras.Model, spec: Spec, data: tuple, epochs: int | None = None, initial_epoch: int = 0,
        on_epoch: Callable[[dict], None] | None = None, progress=None) -> list[dict]:
    """Train like `tf_impl.fit` (same order, same updates), one compiled graph per epoch.

    The epoch is compiled before the first one (common.epochs: the first row's `tier` and
    `compile_seconds`). A progress bar, if given, advances once per epoch."""
    x, y, x_eval, y_eval = data
    n, steps = len(x), -(-len(x) // spec.training.batch_size)
    xs, ts = epoch_inputs(model, spec, x, y)  # TF: the data copied to the device once
    use_schedule(model, spec, n, initial_epoch)  # TF: a decaying rate reads the optimizer's step count
    runs: list[Callable] = []

    def prepare() -> dict:
        runs.append(compile_epoch(model, spec, n))
        return {"tier": runs[0].tier}

    def train_epoch(order: np.ndarray, bar) -> tuple[float, float]:
        loss_sum, correct = runs[0](xs, ts, order)
        bar.update(steps) if bar else None
        return loss_sum / n, correct / n
    return fit_epochs(spec, n, train_epoch, lambda: evaluate(model, spec, x_eval, y_eval), epochs, initial_epoch,
                      on_epoch, progress, prepare)
