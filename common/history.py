"""Run records on disk and the end of a run that diverged.

Every run twinbench records (train, compare, k-fold, experiment runs, benchmark rows) is a
JSON object with a `status` and its epochs, rewritten atomically after every epoch, so an
interrupted or crashed run leaves a valid file with every finished epoch. JSON is strict:
a non-finite number is written as null (the status says why).

A run whose loss (or evaluation loss) is not finite after an epoch has diverged: every
`fit` (book and fast, both frameworks) calls `check_epoch`, which raises `Diverged` naming
the epoch and the spec, after the epoch's row was handed to its caller.
"""
from __future__ import annotations

import math

import numpy as np

RUNNING, COMPLETE, INTERRUPTED, DIVERGED, FAILED = "running", "complete", "interrupted", "diverged", "failed"
STATUSES = (RUNNING, COMPLETE, INTERRUPTED, DIVERGED, FAILED)
WATCHED = ("loss", "val_loss")  # an epoch row's values that must stay finite


class Diverged(ArithmeticError):
    """Training produced a non-finite loss; the run stops at the end of that epoch."""

    def __init__(self, spec_name: str, epoch: int, key: str, value):
        self.spec_name, self.epoch, self.key, self.value = spec_name, epoch, key, value
        super().__init__(f"{spec_name}: diverged in epoch {epoch}: {key} is {value}")


def check_epoch(spec, row: dict) -> None:
    """Raise Diverged if the epoch row's loss or evaluation loss is not finite."""
    for key in WATCHED:
        value = row.get(key)
        if value is not None and not math.isfinite(float(value)):
            raise Diverged(spec.name, int(row.get("epoch", 0)), key, value)


def strict(obj):
    """obj with numpy scalars and arrays made plain and non-finite floats made None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
