"""The fast variant in PyTorch: a whole epoch as one compiled loop, same math as the book.

The epoch is built, before the first one trains, by the first of torch_impl.compiled's tiers
that works (common.tiers), public APIs first where they are as fast: the tuned while_loop
(CPU, on the torch versions it was tested on), the compiled `torch.while_loop`, the compiled
step replayed from CUDA graphs, the compiled or traced step per batch, the book's step from
Python. Each passed a self-check against the book's step.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from common.config import step_key
from common.epochs import fit_epochs
from common.spec import Spec
from common.tiers import first_working
from torch_impl import compiled
from torch_impl.losses import one_hot
from torch_impl.optimizers import use_schedule
from torch_impl.training import as_inputs, evaluate

_LOOPS: dict[tuple, tuple] = {}  # (step_key(spec), n, device) -> (loop or None, tier)

# --- section: compile_epoch ---


def epoch_inputs(model: torch.nn.Module, spec: Spec, x: np.ndarray, y: np.ndarray) -> tuple:
    """(x, t): the training images and one-hot targets as the epoch takes them, on the model's device."""
    return as_inputs(spec, x, model.device), one_hot(spec, y).to(model.device)


def compile_epoch(model: torch.nn.Module, spec: Spec, n_examples: int) -> Callable:
    """epoch(x, t, order, n_steps=None, first=0) -> (loss_sum, correct): one epoch trained on the
    model's device, built (and compiled) now by the first tier that works; `.tier` names it.

    x, t: from `epoch_inputs`; order: the epoch's permutation (numpy). n_steps and first: only full
    batches first .. n_steps - 1 (the short last batch too when n_steps is every full batch), for
    checking the loop that is timed. Built once per step (`step_key`: another seed or name is the
    same step).
    """
    key = (step_key(spec), n_examples, model.device)
    if key in _LOOPS:  # PT: the loop takes the model's tensors as inputs: models of one spec share it
        loop, tier = _LOOPS[key]
        epoch = compiled.epoch_function(model, spec, n_examples, loop) if loop else \
            compiled.book_epoch(model, spec, n_examples)
    else:
        epoch, tier = first_working(compiled.tiers(model, spec, n_examples), "torch_impl.fast")
        _LOOPS[key] = epoch.loop, tier

    def run(x, t, order: np.ndarray, n_steps: int | None = None, first: int = 0) -> tuple[float, int]:
        return epoch(x, t, order, n_examples // spec.training.batch_size if n_steps is None else n_steps, first)
    run.tier = tier
    return run


# --- section: fit ---


def fit(model: torch.nn.Module, spec: Spec, data: tuple, epochs: int | None = None, initial_epoch: int = 0,
        on_epoch: Callable[[dict], None] | None = None, progress=None) -> list[dict]:
    """Train like `torch_impl.fit` (same order, same updates), one compiled loop per epoch.

    The epoch is compiled before the first one (common.epochs: the first row's `tier` and
    `compile_seconds`). A progress bar, if given, advances once per epoch."""
    x, y, x_eval, y_eval = data
    n, steps = len(x), -(-len(x) // spec.training.batch_size)
    xs, ts = epoch_inputs(model, spec, x, y)  # the data copied to the device once
    scheduler = use_schedule(model, spec, n, initial_epoch)  # PT: StepLR, stepped after each epoch
    runs: list[Callable] = []

    def prepare() -> dict:
        runs.append(compile_epoch(model, spec, n))
        return {"tier": runs[0].tier}

    def train_epoch(order: np.ndarray, bar) -> tuple[float, float]:
        loss_sum, correct = runs[0](xs, ts, order)
        bar.update(steps) if bar else None
        scheduler.step() if scheduler else None
        return loss_sum / n, correct / n
    return fit_epochs(spec, n, train_epoch, lambda: evaluate(model, spec, x_eval, y_eval), epochs, initial_epoch,
                      on_epoch, progress, prepare)
