"""The fast paths' self-check: a few steps of a freshly built epoch against as many of the
book's steps, from the same weights, on inputs shaped like the real epoch. Every compiled
tier of both frameworks passes it before it trains; a tier that disagrees is dropped
(common.tiers) like one that fails to compile."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.compare import compare_sets, compare_state
from common.spec import Spec
from common.tolerances import tol

CHECK_STEPS = 8  # steps compared (or fewer when the epoch has fewer full batches)


@dataclass(frozen=True)
class After:
    """A run's state after the checked steps: canonical weights and optimizer state, the
    loss summed over the examples, the count of correct predictions."""

    weights: dict
    state: dict
    loss_sum: float
    correct: int


def check_data(spec: Spec, n_examples: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (n, *input_shape), labels (n,), order (n,)) shaped like an epoch of n_examples, whose
    first k batches hold random data (a seeded generator of its own, not the global one)."""
    net, rows = spec.network, k * spec.training.batch_size
    rng = np.random.default_rng(0)
    x = np.zeros((n_examples, *net.input_shape), dtype=spec.training.dtype)
    x[:rows] = rng.standard_normal((rows, *net.input_shape))
    labels = np.zeros(n_examples, dtype=np.int64)
    labels[:rows] = rng.integers(0, net.output_units, rows)
    return x, labels, np.arange(n_examples)


def disagreement(spec: Spec, start: dict, got: After, want: After) -> str | None:
    """Why `got` (the compiled steps) differs from `want` (the book's), or None when they
    agree up to rounding: weights within the self-check tolerance of how far the book moved
    them, the step count exactly and each optimizer slot at its own scale (compare_state), the
    loss sum to 1e-4, the count exactly."""
    t = tol(spec.training.dtype, "self-check")
    moved = {k: v - start[k] for k, v in want.weights.items()}
    scale = max((float(np.nanmax(np.abs(v))) for v in moved.values() if np.size(v) and not np.all(np.isnan(v))),
                default=0.0)
    for what, (worst, _) in (("weights", compare_sets(got.weights, want.weights, t, scale, equal_nan=True)),
                             ("optimizer state", compare_state(got.state, want.state, t, equal_nan=True))):
        if not worst.passed:
            return f"{what}: {worst.where}"
    both_nan = bool(np.isnan(got.loss_sum) and np.isnan(want.loss_sum))
    same_loss = abs(got.loss_sum - want.loss_sum) <= 1e-4 * abs(want.loss_sum) or both_nan
    # diverged alike: the predictions are an argmax over NaN outputs, which each kernel breaks its own way
    if not same_loss or (got.correct != want.correct and not both_nan):
        return f"loss sum {got.loss_sum} vs {want.loss_sum}, correct {got.correct} vs {want.correct}"
    return None
