"""The epochs that tf_impl.fast's tiers build: one `tf.function` holding the whole epoch as a
`tf.while_loop` over the book's step (XLA-compiled, or as a TF graph), the book's step
looped from Python, and the self-check each built epoch passes before it trains.

Nothing here is arithmetic: the step is the book's (`training.train_batch`); the loop only
slices the batch and accumulates the loss and the count.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from common import interrupts
from common.selfcheck import CHECK_STEPS, After, check_data, disagreement
from common.spec import Spec
from common.tiers import Tier
from tf_impl.losses import one_hot
from tf_impl.model import get_weights, set_weights
from tf_impl.optimizers import get_optimizer_state, set_optimizer_state
from tf_impl.training import as_inputs, train_batch

# TF: 4 steps per loop iteration below batch 32, where PyTorch's loops run 1: conf1 0.26 s/epoch against 0.28 s
# at 1 step, for 0.4 s more compile; at batch 64 no faster, for 0.8 s more (bench/README.md, "Tiers")
UNROLL_BELOW_BATCH, UNROLL = 32, 4


def _unroll(spec: Spec) -> int:
    return UNROLL if spec.training.batch_size < UNROLL_BELOW_BATCH else 1


# --- section: tiers ---


def tiers(model: keras.Model, spec: Spec, n_examples: int) -> list[Tier]:
    """The ways to build the epoch, to try in order, all public APIs (XLA is TF's own compiler:
    no tuned tier): the XLA-compiled `tf.function`, the same as a plain TF graph, the book's
    step from Python. Each built epoch passed `checked`."""
    def tf_function(jit: bool) -> Callable[[], Callable]:
        return lambda: checked(model, spec, n_examples, epoch_function(model, spec, n_examples, jit))
    return [Tier("xla", tf_function(True), lambda: _xla_convolutions(model, spec)), Tier("graph", tf_function(False)),
            Tier("book", lambda: book_epoch(model, spec, n_examples))]


def _xla_convolutions(model: keras.Model, spec: Spec) -> str | None:
    """Why XLA is passed over: on a CPU its convolutions run many times slower than TF's own
    kernels, which the graph tier calls (bench/README.md, "Tiers")."""
    convs = any(layer.type == "conv2d" for layer in spec.network.layers)
    return "XLA's CPU convolutions (the graph tier's kernels are faster)" if convs and model.device == "cpu" else None


# --- section: epochs ---


def _counted(model: keras.Model, spec: Spec, xb, tb):
    """The book's step on one batch: (the batch's loss summed over its examples, correct count)."""
    loss, z = train_batch(model, spec, xb, tb)
    correct = tf.reduce_sum(tf.cast(tf.argmax(z, -1) == tf.argmax(tb, -1), z.dtype))
    return loss * tf.cast(tf.shape(xb)[0], z.dtype), correct


def epoch_function(model: keras.Model, spec: Spec, n_examples: int, jit: bool) -> Callable:
    """epoch(x, t, order, n_steps, first) -> (loss_sum, correct): full batches first .. n_steps - 1
    of x[order] (and the last, smaller batch when n_steps is every full batch), in one tf.function."""
    bs = spec.training.batch_size
    full, tail = divmod(n_examples, bs)

    # TF: XLA fuses the step's ops and compiles the whole loop. No autograph: the loop's Python is over static
    # values, and converting the step's code cost 0.9 s of a new process's first conf5 epoch (3.5 -> 2.6 s)
    @tf.function(jit_compile=jit, autograph=False)
    def run(x, t, order, n_steps, first):
        x, t = tf.gather(x, order), tf.gather(t, order)  # the epoch's order, gathered once on device
        zero, rest = tf.zeros((), x.dtype), [0] * (len(x.shape) - 1)  # an example's axes: (28, 28) or (H, W, C)

        def body(i, loss_sum, correct, steps=1):
            for k in range(steps):  # unrolled: one loop test per `steps` steps
                # TF: tf.slice with a static size keeps shapes static, so XLA compiles one step
                j = (i + k) * bs
                loss, c = _counted(model, spec, tf.slice(x, [j, *rest], [bs, *x.shape[1:]]), tf.slice(t, [j, 0], [bs, -1]))
                loss_sum, correct = loss_sum + loss, correct + c
            return i + steps, loss_sum, correct
        state, steps = (first, zero, zero), _unroll(spec)
        if steps > 1:
            state = tf.while_loop(lambda i, *_: i + steps <= n_steps, lambda *a: body(*a, steps=steps), state)
        _, loss_sum, correct = tf.while_loop(lambda i, *_: i < n_steps, body, state)
        if tail:  # the last, smaller batch, in a whole epoch only
            def with_tail():
                loss, c = _counted(model, spec, x[full * bs:], t[full * bs:])
                return loss_sum + loss, correct + c
            loss_sum, correct = tf.cond(n_steps == full, with_tail, lambda: (loss_sum, correct))
        return loss_sum, correct

    def epoch(x, t, order, n_steps: int = full, first: int = 0) -> tuple[float, int]:
        loss_sum, correct = run(x, t, tf.constant(order, tf.int32), tf.constant(n_steps, tf.int32),
                                tf.constant(first, tf.int32))
        return float(loss_sum), int(correct)  # TF: the only host sync of the epoch
    return epoch


def book_epoch(model: keras.Model, spec: Spec, n_examples: int) -> Callable:
    """The same epoch as epoch_function's, the book's step called from Python per batch."""
    bs = spec.training.batch_size

    def epoch(x, t, order, n_steps: int = n_examples // bs, first: int = 0) -> tuple[float, int]:
        loss_sum, correct = 0.0, 0
        stop = n_examples if n_steps == n_examples // bs else n_steps * bs
        for j in range(first * bs, stop, bs):
            interrupts.check()
            rows = tf.constant(order[j:j + bs], tf.int32)
            loss, c = _counted(model, spec, tf.gather(x, rows), tf.gather(t, rows))
            loss_sum, correct = loss_sum + float(loss), correct + int(c)
        return loss_sum, correct
    return epoch


# --- section: self_check ---


def checked(model: keras.Model, spec: Spec, n_examples: int, epoch: Callable) -> Callable:
    """`epoch`, after CHECK_STEPS of it (which also compiles it, on inputs shaped like the real
    epoch's) agreed with as many of the book's steps from the same weights; RuntimeError if not.
    The model's weights and optimizer state are left as they were."""
    k = min(n_examples // spec.training.batch_size, CHECK_STEPS)
    x, labels, order = check_data(spec, n_examples, k)
    xs, ts = tf.constant(as_inputs(spec, x)), one_hot(spec, labels)
    start = get_weights(model), get_optimizer_state(model, spec)
    runs = []
    for run in (epoch, book_epoch(model, spec, n_examples)):
        loss_sum, correct = run(xs, ts, order, k)
        runs.append(After(get_weights(model), get_optimizer_state(model, spec), loss_sum, correct))
        set_weights(model, start[0])
        set_optimizer_state(model, spec, start[1])
    problem = disagreement(spec, start[0], *runs)
    if problem:
        raise RuntimeError(f"the built epoch disagrees with the book's step: {problem}")
    return epoch
