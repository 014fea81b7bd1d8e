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

import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np

import frameworks
from bench.matrix import Row, Settings
from common import reference as ref
from common.compare import compare_sets
from common.data import epoch_permutation
from common.history import Diverged
from common.spec import Spec
from common.tolerances import tol


class Unavailable(Exception):
    """The row cannot run here (no GPU, no fast module); its message is the one-line reason."""


class Skipped(Unavailable):
    """The row is not for this machine (its framework is not installed, it sees no GPU)."""


class GateFailed(Exception):
    """The row's weights left float32 tolerance of the reference in the parity gate."""


def variant_api(framework: str, variant: str) -> SimpleNamespace:
    """The variant's functions (frameworks registry); Unavailable if the variant is missing."""
    fw = frameworks.get(framework)
    try:
        return fw.variant(variant)
    except ModuleNotFoundError as exc:
        raise Unavailable(f"{fw.package}.{variant} does not exist (variant not available)") from exc


def parity_gate(api, spec: Spec, device: str, data: tuple, steps: int) -> dict:
    """Fit the variant on its first `steps` batches from the canonical weights and compare
    with the float64 reference taking the same steps in the same (shared) order, at the
    tolerance common.tolerances gives the gate (relative to how far the weights moved)."""
    bs, seed = spec.training.batch_size, spec.training.seed
    n = steps * bs
    x, y, x_eval, y_eval = data
    w0 = ref.start_weights(spec, seed)
    model = api.build_model(spec, device=device)
    api.set_weights(model, w0)
    api.fit(model, spec, (x[:n], y[:n], x_eval[:1], y_eval[:1]), epochs=1)  # Diverged on a non-finite loss
    got = api.get_weights(model)
    bad = [k for k, v in got.items() if not np.all(np.isfinite(v))]
    if bad:
        raise Diverged(spec.name, 1, f"{bad[0]} in the parity gate", "not finite")
    order = epoch_permutation(seed, 0, n) if spec.training.shuffle else np.arange(n)
    want = {k: v.astype(np.float64) for k, v in w0.items()}
    state = ref.init_state(spec, want)
    for s in range(steps):
        idx = order[s * bs:(s + 1) * bs]
        _, want, state = ref.train_step(spec, want, state, x[idx], y[idx])
    moved = max(float(np.max(np.abs(want[k] - w0[k]))) for k in want)
    t = tol(spec.training.dtype, "gate")
    worst, each = compare_sets(got, want, t, scale=moved)
    name = max(each, key=lambda k: each[k].ratio) if each else ""
    return {"steps": steps, "rtol": t.rtol, "atol_of_movement": t.atol, "worst_ratio": worst.ratio,
            "worst_weight": name, "worst_entry": worst.where, "bits": worst.bits, "reference_moved": moved,
            "ok": bool(worst.passed and moved > 0)}


def threads() -> dict:
    """Thread settings in force (0 for TF means 'its default: all cores'; the floors use one), of the
    frameworks installed."""
    out = {f"{name}_{k}": v for name in frameworks.available() for k, v in frameworks.get(name).threads().items()}
    return {**out, "cpu_count": os.cpu_count(),
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
    fw = frameworks.get(row.framework)
    reason = fw.missing() or fw.device_unavailable(row.device)
    if reason:
        raise Skipped(reason)
    api = variant_api(row.framework, row.variant)
    gate = parity_gate(api, spec, row.device, data, settings.gate_steps)
    if not gate["ok"]:
        raise GateFailed(f"{row.id}: after {gate['steps']} steps {gate['worst_weight']} differs from the float64 "
                         f"reference by {gate['worst_ratio']:.1f}x the gate's tolerance ({gate['worst_entry']});"
                         " refusing to time it" + (" (TF32 matmuls?)" if row.device == "cuda"
                                                                       else ""))
    n = settings.examples(row)
    x, y, x_test, y_test = data
    model = api.build_model(spec, device=row.device)
    api.set_weights(model, ref.start_weights(spec, spec.training.seed))
    tiny = (x_test[:1], y_test[:1])
    epochs = Epochs(train=lambda xe, ye: api.fit(model, spec, (xe, ye, *tiny), epochs=1)[-1],
                    evaluate=lambda: api.evaluate(model, spec, x_test, y_test),
                    sync=lambda: fw.synchronize(row.device), rows=[])
    timed_epochs(epochs, x[:n], y[:n], spec.training.seed, settings.rounds, benchmark)
    return {"module": api.module, "tier": epochs.rows[0].get("tier"), "parity": gate, "examples": n,
            "epochs": epochs.rows}


def make_floor(spec: Spec, weights: dict, device: str):
    """The floor of `device`: C on the CPU (bench.floor), JAX on CUDA (bench.floor_jax);
    Skipped saying why there is none here."""
    if device == "cuda":
        from bench import floor_jax
        reason = floor_jax.unavailable("cuda")
        if reason:
            raise Skipped(reason)
        return floor_jax.JaxFloor(spec, weights, "cuda")
    from bench import cfloor
    from bench.floor import Floor
    try:
        cfloor.load("conf5" if spec.optimizer.name == "adam" else "conf1")  # built once (cached): no C compiler
        # or cffi here is a skip, not a failure
    except cfloor.CFloorUnavailable as exc:
        raise Skipped(str(exc)) from None
    return Floor(spec, weights)


def floor_gate(spec: Spec, data: tuple, steps: int, device: str = "cpu") -> dict:
    """The floor's first `steps` batches against the float64 reference, as parity_gate does for
    the framework rows (this also compiles the floor, so its first timed epoch does not)."""
    bs, seed = spec.training.batch_size, spec.training.seed
    n = steps * bs
    x = np.ascontiguousarray(data[0][:n].reshape(n, -1))
    w0 = ref.start_weights(spec, seed)
    floor = make_floor(spec, w0, device)
    order = epoch_permutation(seed, 0, n)
    floor.train_epoch(x, data[1][:n], order)
    want = {k: v.astype(np.float64) for k, v in w0.items()}
    state = ref.init_state(spec, want)
    for s in range(steps):
        idx = order[s * bs:(s + 1) * bs]
        _, want, state = ref.train_step(spec, want, state, x[idx], data[1][idx])
    moved = max(float(np.max(np.abs(want[k] - w0[k]))) for k in want)
    worst, _ = compare_sets(floor.weights(), want, tol(spec.training.dtype, "gate"), scale=moved)
    return {"steps": steps, "worst_ratio": worst.ratio, "worst_entry": worst.where, "bits": worst.bits,
            "reference_moved": moved, "ok": bool(worst.passed and moved > 0)}


def measure_floor(row: Row, settings: Settings, spec: Spec, data: tuple, benchmark) -> dict:
    """Gate, then time the compiled floor of the row's device."""
    gate = floor_gate(spec, data, max(settings.gate_steps, 100 if spec.training.batch_size == 1 else 12), row.device)
    if not gate["ok"]:
        raise GateFailed(f"{row.id}: the floor differs from the float64 reference ({gate['worst_entry']})")
    n = settings.examples(row)
    x, y, x_test, y_test = data
    x2, xt2 = np.ascontiguousarray(x[:n].reshape(n, -1)), np.ascontiguousarray(x_test.reshape(len(x_test), -1))
    floor = make_floor(spec, ref.start_weights(spec, spec.training.seed), row.device)
    order = epoch_permutation(spec.training.seed, 0, n)  # applied on top of each epoch's data, as fit does
    epochs = Epochs(train=lambda xe, ye: floor.train_epoch(xe, ye, order),
                    evaluate=lambda: floor.evaluate(xt2, y_test), sync=lambda: None, rows=[])
    timed_epochs(epochs, x2, y[:n], spec.training.seed, settings.rounds, benchmark)
    return {"module": type(floor).__module__, "parity": gate, "examples": n, "epochs": epochs.rows}
