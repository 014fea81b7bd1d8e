"""Measuring one row: its checks (bench/verify.py), then its timed epochs.

Protocol (bench/README.md): a fresh model from the canonical initial weights; epoch 1 timed
alone (time to first epoch); then `rounds` epochs, each a `fit(..., epochs=1)` call on that
epoch's permutation of the training data (verify.data_order), each timed by the fit's own
`seconds` (training only). The evaluation set handed to fit is one test image (so the in-fit
evaluation costs next to nothing); the whole test set is evaluated after every epoch, outside
the timed region, and that evaluation is timed on its own. The floors and the JAX peer train
the same epochs on the same orders.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np

import frameworks
from bench import verify
from bench.matrix import Row, Settings
from common import reference as ref
from common.epochs import epoch_order
from common.spec import Spec


class Unavailable(Exception):
    """The row cannot run here (no GPU, no fast module); its message is the one-line reason."""


class Skipped(Unavailable):
    """The row is not for this machine (its framework is not installed, it sees no GPU)."""


def variant_api(framework: str, variant: str) -> SimpleNamespace:
    """The variant's functions (frameworks registry); Unavailable if the variant is missing."""
    fw = frameworks.get(framework)
    try:
        return fw.variant(variant)
    except ModuleNotFoundError as exc:
        raise Unavailable(f"{fw.package}.{variant} does not exist (variant not available)") from exc


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
        self.sync()
        start = time.perf_counter()
        loss, acc = self.evaluate()
        self.sync()
        self.rows[-1].update(test_loss=float(loss), test_accuracy=float(acc), eval_seconds=time.perf_counter() - start)


def timed_epochs(epochs: Epochs, spec: Spec, x: np.ndarray, y: np.ndarray, rounds: int,
                 progress: Callable[[str], None] | None = None) -> list:
    """Epoch 1 (time to first epoch), then `rounds` more, each on verify.data_order's permutation."""
    for k in range(rounds + 1):
        perm = verify.data_order(spec, k, len(x))
        epochs.epoch(x[perm], y[perm])
        if progress and epochs.rows[-1]["wall_seconds"] >= 2:  # long epochs say the run goes on
            progress(f"epoch {k + 1}/{rounds + 1}: {epochs.rows[-1]['seconds']:.3g} s")
    return epochs.rows


def measure_framework(row: Row, settings: Settings, spec: Spec, data: tuple, progress=None) -> dict:
    """Check, time and check again one framework row; its measurements. verify.GateFailed when a
    check fails (before timing, or after it: the timed epochs against the floor's)."""
    fw = frameworks.get(row.framework)
    reason = fw.missing() or fw.device_unavailable(row.device)
    if reason:
        raise Skipped(reason)
    api = variant_api(row.framework, row.variant)
    n = settings.examples(row)
    x, y, x_test, y_test = data
    model = api.build_model(spec, device=row.device)
    if row.variant == "fast":  # the loop that is timed: the fit below reuses it
        gate = verify.loop_gate(row.framework, model, spec, x[:n], y[:n], settings.gate_steps)
    else:
        gate = verify.parity_gate(api, spec, row.device, data, settings.gate_steps)
    if not gate["ok"]:
        bad = next(c for c in gate["checks"] if not c["ok"])
        raise verify.GateFailed(f"{bad['what']}: differs from the float64 reference by {bad['worst_ratio']:.1f}x "
                                f"the gate's tolerance ({bad['worst_entry']}); not timed"
                                + (" (TF32 matmuls?)" if row.device == "cuda" else ""))
    api.set_weights(model, ref.start_weights(spec, spec.training.seed))
    tiny = (x_test[:1], y_test[:1])
    epochs = Epochs(train=lambda xe, ye: api.fit(model, spec, (xe, ye, *tiny), epochs=1)[-1],
                    evaluate=lambda: api.evaluate(model, spec, x_test, y_test),
                    sync=lambda: fw.synchronize(row.device), rows=[])
    timed_epochs(epochs, spec, x[:n], y[:n], settings.rounds, progress)
    if gate.get("build_seconds") is not None:
        epochs.rows[0]["build_seconds"] = gate["build_seconds"]  # the loop was built in the gate
    check = verify.floor_check(spec, x[:n], y[:n], epochs.rows)
    found = {"module": api.module, "optimizer": api.describe_optimizer(spec), "tier": gate.get("tier")
             or epochs.rows[0].get("tier"), "parity": gate, "floor_check": check, "examples": n, "epochs": epochs.rows}
    if check["ok"] is False:
        raise verify.GateFailed(f"after timing, {check['reason']}", found)
    return found


def make_baseline(row: Row, spec: Spec, weights: dict):
    """The row's program without a framework: the C floor (CPU), the JAX floor (CUDA), or the JAX
    peer (jax rows); Skipped saying why there is none here."""
    from bench import floor_jax
    if row.is_peer or row.device == "cuda":
        reason = floor_jax.unavailable(row.device)
        if reason:
            raise Skipped(reason)
        return floor_jax.JaxFloor(spec, weights, row.device)
    from bench import cfloor
    from bench.floor import Floor
    try:
        cfloor.load("conf5" if spec.optimizer.name == "adam" else "conf1")  # built once (cached)
    except cfloor.CFloorUnavailable as exc:
        raise Skipped(str(exc)) from None  # no C compiler or cffi here: a skip, not a failure
    return Floor(spec, weights)


def measure_baseline(row: Row, settings: Settings, spec: Spec, data: tuple, progress=None) -> dict:
    """Gate, then time a floor or the JAX peer (the same epochs, orders and evaluation as a framework row)."""
    w0 = ref.start_weights(spec, spec.training.seed)
    gate = verify.floor_gate(make_baseline(row, spec, w0), spec, data,
                             max(settings.gate_steps, 100 if spec.training.batch_size == 1 else 12))
    if not gate["ok"]:
        raise verify.GateFailed(f"{gate['checks'][0]['what']}: differs from the float64 reference "
                                f"({gate['checks'][0]['worst_entry']})")
    n = settings.examples(row)
    x, y, x_test, y_test = data
    x2, xt2 = np.ascontiguousarray(x[:n].reshape(n, -1)), np.ascontiguousarray(x_test.reshape(len(x_test), -1))
    base, order = make_baseline(row, spec, w0), epoch_order(spec, 0, n)  # fit's order, applied on top of each epoch's
    epochs = Epochs(train=lambda xe, ye: base.train_epoch(xe, ye, order), evaluate=lambda: base.evaluate(xt2, y_test),
                    sync=lambda: None, rows=[])
    timed_epochs(epochs, spec, x2, y[:n], settings.rounds, progress)
    return {"module": type(base).__module__, "parity": gate, "examples": n, "epochs": epochs.rows,
            **({"matmul_precision": "highest"} if row.is_peer or row.device == "cuda" else {})}
