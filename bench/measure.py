"""Measuring one row: the variant's API, the parity gate, the timed epochs.

Protocol (bench/README.md): a fresh model from the canonical initial weights;
epoch 0 timed alone (time to first epoch: tracing, compilation, lazy init);
then `rounds` epochs under pytest-benchmark's pedantic mode, each a
`fit(..., epochs=1)` call on the epoch's shuffle of the training data. The
evaluation set handed to fit is one test image (so the in-fit evaluation costs
next to nothing); the whole test set is evaluated after every epoch, outside
the timed region, and that evaluation is timed on its own.
"""
from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np

from bench.matrix import Row, Settings
from common import reference as ref
from common import run
from common.data import epoch_permutation
from common.spec import Spec

GATE_RTOL, GATE_ATOL = 1e-4, 1e-6


class Unavailable(Exception):
    """The row cannot run here (no GPU, no fast module); its message is the one-line reason."""


class GateFailed(Exception):
    """The row's weights left float32 tolerance of the reference in the parity gate."""


def device_unavailable(framework: str, device: str) -> str | None:
    """One line saying why `framework` cannot use `device` here, or None."""
    if device != "cuda":
        return None
    if framework == "torch":
        import torch
        return None if torch.cuda.is_available() else "PyTorch sees no GPU (torch.cuda.is_available() is False)"
    import tensorflow as tf
    return None if tf.config.list_physical_devices("GPU") else "TensorFlow sees no GPU (no physical GPU device)"


def variant_api(framework: str, variant: str) -> SimpleNamespace:
    """build_model, set_weights, get_weights, fit, evaluate of the variant; a fast module
    may define any of them, the rest come from the book package."""
    book = run.framework(framework)
    module = book
    if variant != "book":
        name = f"{run.FRAMEWORKS[framework]}.{variant}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            raise Unavailable(f"{name} does not exist (variant not available)") from None
    names = ("build_model", "set_weights", "get_weights", "fit", "evaluate")
    return SimpleNamespace(module=module.__name__,
                           **{n: getattr(module, n, None) or getattr(book, n) for n in names})


def synchronize(framework: str, device: str) -> None:
    """Wait for queued GPU work (a no-op on CPU)."""
    if device != "cuda":
        return
    if framework == "torch":
        import torch
        torch.cuda.synchronize()
    else:
        import tensorflow as tf
        sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
        sync() if sync else None


def canonical_weights(spec: Spec, seed: int) -> dict[str, np.ndarray]:
    """The reference's initial weights for `seed`, in the spec's dtype."""
    return {k: v.astype(spec.training.dtype) for k, v in ref.init_weights(spec, seed).items()}


def parity_gate(api, spec: Spec, device: str, data: tuple, steps: int) -> dict:
    """Fit the variant on its first `steps` batches from the canonical weights and compare
    with the float64 reference taking the same steps in the same (shared) order."""
    bs, seed = spec.training.batch_size, spec.training.seed
    n = steps * bs
    x, y, x_eval, y_eval = data
    w0 = canonical_weights(spec, seed)
    model = api.build_model(spec, device=device)
    api.set_weights(model, w0)
    api.fit(model, spec, (x[:n], y[:n], x_eval[:1], y_eval[:1]), epochs=1)
    got = api.get_weights(model)
    order = epoch_permutation(seed, 0, n) if spec.training.shuffle else np.arange(n)
    want = {k: v.astype(np.float64) for k, v in w0.items()}
    state = ref.init_state(spec, want)
    for s in range(steps):
        idx = order[s * bs:(s + 1) * bs]
        _, want, state = ref.train_step(spec, want, state, x[idx], y[idx])
    worst, where = 0.0, ""
    for name, w in want.items():
        excess = np.max(np.abs(got[name] - w) / (GATE_ATOL + GATE_RTOL * np.abs(w)))
        if excess > worst:
            worst, where = float(excess), name
    moved = max(float(np.max(np.abs(want[k] - w0[k]))) for k in want)
    return {"steps": steps, "rtol": GATE_RTOL, "atol": GATE_ATOL, "worst_ratio": worst, "worst_weight": where,
            "reference_moved": moved, "ok": bool(worst <= 1.0 and moved > 0)}


def threads() -> dict:
    """Thread settings in force (0 for TF means 'its default: all cores')."""
    import numba
    import tensorflow as tf
    import torch
    return {"torch_intra": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
            "tf_intra": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter": tf.config.threading.get_inter_op_parallelism_threads(),
            "numba": numba.get_num_threads(), "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


@dataclass
class Epochs:
    """Per-epoch records of one row; `train` runs one epoch, `evaluate` evaluates the last."""

    train: Callable[[np.ndarray, np.ndarray], dict]
    evaluate: Callable[[], tuple[float, float]]
    sync: Callable[[], None]
    rows: list

    def epoch(self, x: np.ndarray, y: np.ndarray) -> None:
        self.sync()
        start = time.perf_counter()
        row = self.train(x, y)
        self.sync()
        wall = time.perf_counter() - start
        row = {k: v for k, v in row.items() if k not in ("val_loss", "val_accuracy", "epoch")}  # 1-image eval
        self.rows.append({"epoch": len(self.rows) + 1, **row, "wall_seconds": wall})

    def evaluate_last(self) -> None:
        if not self.rows or "test_accuracy" in self.rows[-1]:
            return
        self.sync()
        start = time.perf_counter()
        loss, acc = self.evaluate()
        self.sync()
        self.rows[-1].update(test_loss=float(loss), test_accuracy=float(acc),
                             eval_seconds=time.perf_counter() - start)


def timed_epochs(epochs: Epochs, x: np.ndarray, y: np.ndarray, seed: int, rounds: int, benchmark) -> list:
    """Epoch 0 alone (time to first epoch), then `rounds` epochs timed by pytest-benchmark."""
    epochs.epoch(x, y)
    epochs.evaluate_last()

    def setup():
        epochs.evaluate_last()
        perm = epoch_permutation(seed, len(epochs.rows), len(x))
        return (x[perm], y[perm]), {}

    benchmark.pedantic(epochs.epoch, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    epochs.evaluate_last()
    return epochs.rows


def measure_framework(row: Row, settings: Settings, spec: Spec, data: tuple, benchmark) -> dict:
    """Gate, then time one framework row; returns the row's measurements."""
    reason = device_unavailable(row.framework, row.device)
    if reason:
        raise Unavailable(reason)
    api = variant_api(row.framework, row.variant)
    gate = parity_gate(api, spec, row.device, data, settings.gate_steps)
    if not gate["ok"]:
        raise GateFailed(f"{row.id}: after {gate['steps']} steps {gate['worst_weight']} differs from the float64 "
                         f"reference by {gate['worst_ratio']:.1f}x the float32 tolerance (rtol {GATE_RTOL}, "
                         f"atol {GATE_ATOL}); refusing to time it" + (" (TF32 matmuls?)" if row.device == "cuda"
                                                                       else ""))
    n = settings.examples(row)
    x, y, x_test, y_test = data
    model = api.build_model(spec, device=row.device)
    api.set_weights(model, canonical_weights(spec, spec.training.seed))
    tiny = (x_test[:1], y_test[:1])
    epochs = Epochs(train=lambda xe, ye: api.fit(model, spec, (xe, ye, *tiny), epochs=1)[-1],
                    evaluate=lambda: api.evaluate(model, spec, x_test, y_test),
                    sync=lambda: synchronize(row.framework, row.device), rows=[])
    timed_epochs(epochs, x[:n], y[:n], spec.training.seed, settings.rounds, benchmark)
    return {"module": api.module, "parity": gate, "examples": n, "epochs": epochs.rows}


def measure_floor(row: Row, settings: Settings, spec: Spec, data: tuple, benchmark) -> dict:
    """Time the compiled floor (its first epoch includes Numba's compilation)."""
    from bench.floor import Floor
    n = settings.examples(row)
    x, y, x_test, y_test = data
    x2, xt2 = np.ascontiguousarray(x[:n].reshape(n, -1)), np.ascontiguousarray(x_test.reshape(len(x_test), -1))
    floor = Floor(spec, canonical_weights(spec, spec.training.seed))
    order = epoch_permutation(spec.training.seed, 0, n)  # applied on top of each epoch's data, as fit does
    epochs = Epochs(train=lambda xe, ye: floor.train_epoch(xe, ye, order),
                    evaluate=lambda: floor.evaluate(xt2, y_test), sync=lambda: None, rows=[])
    timed_epochs(epochs, x2, y[:n], spec.training.seed, settings.rounds, benchmark)
    return {"module": "bench.floor", "parity": {"checked_by": "bench/test_floor.py", "ok": True},
            "examples": n, "epochs": epochs.rows}
