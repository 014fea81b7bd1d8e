"""The epoch loop every `fit` runs (book and fast, both frameworks): the epoch's order,
the timing, the evaluation, the history row, `on_epoch` and the divergence check.

A Ctrl-C (common.interrupts) stops the loop between epochs, and a book loop between batches.

A fit supplies how one epoch trains (`train_epoch(order, bar) -> (loss, accuracy)`, the
running means over the epoch) and how the model is evaluated; a fast fit also supplies
`prepare`, which compiles its epoch before the first one, so that in both frameworks an
epoch's `seconds` is training only and the compile is timed apart (`compile_seconds`).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from common import interrupts
from common.data import epoch_permutation
from common.history import check_epoch
from common.spec import Spec


def epoch_order(spec: Spec, epoch: int, n: int) -> np.ndarray:
    """The order of the n training examples in epoch `epoch` (0-based), shared by every fit."""
    return epoch_permutation(spec.training.seed, epoch, n) if spec.training.shuffle else np.arange(n)


def check_start(steps_taken: int, per_epoch: int, initial_epoch: int) -> None:
    """ValueError unless the optimizer's steps are initial_epoch whole epochs: a decaying rate is
    each framework's own schedule (Keras counts steps, StepLR the epochs it is stepped), and the two
    agree only where a fit starts at the epoch its optimizer state is in."""
    if steps_taken != initial_epoch * per_epoch:
        raise ValueError(f"fit: initial_epoch {initial_epoch}, but the optimizer has taken {steps_taken} steps"
                         f" ({per_epoch} an epoch); with a decaying rate (training.schedule) a fit starts where its"
                         f" optimizer state is: pass initial_epoch={steps_taken / per_epoch:g}, or a fresh model")


def fit_epochs(spec: Spec, n: int, train_epoch: Callable[[np.ndarray, object], tuple[float, float]],
               evaluate: Callable[[], tuple[float, float]], epochs: int | None = None, initial_epoch: int = 0,
               on_epoch: Callable[[dict], None] | None = None, progress=None,
               prepare: Callable[[], dict] | None = None) -> list[dict]:
    """Epochs initial_epoch .. `epochs` (the spec's by default), as Keras counts them; one dict
    per epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds (training time only).

    prepare: called once before the first epoch (a fast path compiles there); what it returns
    (e.g. the tier that compiled) and `compile_seconds` go into the first row. progress:
    progress(epoch) -> a bar (or None) handed to train_epoch, closed after the epoch."""
    info = {}
    if prepare is not None:
        start = time.perf_counter()
        info = {**prepare(), "compile_seconds": time.perf_counter() - start}
    history: list[dict] = []
    for epoch in range(initial_epoch, epochs or spec.training.epochs):
        interrupts.check()  # a Ctrl-C while building, evaluating or writing stops here (common.interrupts)
        order, bar = epoch_order(spec, epoch, n), progress(epoch) if progress else None
        start = time.perf_counter()  # the order is drawn before: `seconds` is training only
        loss, accuracy = train_epoch(order, bar)
        seconds = time.perf_counter() - start
        bar.close() if bar else None
        interrupts.check()  # the epoch did not finish: it is not recorded
        val_loss, val_acc = evaluate()
        row = {"epoch": epoch + 1, "loss": float(loss), "accuracy": float(accuracy), "val_loss": float(val_loss),
               "val_accuracy": float(val_acc), "seconds": seconds, **(info if not history else {})}
        history.append(row)
        on_epoch(row) if on_epoch else None
        check_epoch(spec, row)  # a non-finite loss ends the run here (common.history.Diverged)
    return history
