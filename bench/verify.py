"""Every check a benchmark row passes, so that what it times is the math it claims.

Before timing (a failure refuses the row, GateFailed):
  parity_gate   book rows: `fit` on the first batches from the canonical weights against the
                float64 reference (the book's fit is the same code at any example count).
  loop_gate     fast rows: the loop that is timed, built for the row's example count, on the
                shuffled order: its first batches; its last full batch and the short one, from
                the loop's own state after all the others; the first batches of epoch 2 from the
                end of epoch 1. Each against the float64 reference from the same state.
  floor_gate    the floors and the JAX peer: their first batches against the reference.
After timing:
  floor_check   a framework row's per-epoch train loss and accuracy against the C floor's, the
                same start and the same order of every epoch (common.tolerances, EPOCH_*).
"""
from __future__ import annotations

import time

import numpy as np

import frameworks
from common import reference as ref
from common.compare import compare_sets, compare_state
from common.data import epoch_permutation
from common.epochs import epoch_order
from common.history import Diverged
from common.spec import Spec
from common.tolerances import EPOCH_ACCURACY, EPOCH_FIRST, EPOCH_LATER, tol

class GateFailed(Exception):
    """The row does not compute what it claims; the message says where. Before timing the row is not
    timed; after it, `found` holds what was measured (stored, not reported as a result)."""

    def __init__(self, message: str, found: dict | None = None):
        super().__init__(message)
        self.found = found or {}


def data_order(spec: Spec, epoch: int, n: int) -> np.ndarray:
    """The permutation of the training data handed to `fit` for timed epoch `epoch` (0: as loaded):
    each call of fit(epochs=1) draws its own first-epoch order on top (epoch_order)."""
    return np.arange(n) if epoch == 0 else epoch_permutation(spec.training.seed, epoch, n)


def reference_steps(spec: Spec, w: dict, state: dict, x: np.ndarray, y: np.ndarray,
                    batches: list[np.ndarray]) -> tuple[dict, dict]:
    """The float64 reference's (weights, state) after one step per batch of row indices, from (w, state)."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    state = {k: np.asarray(v, np.float64) for k, v in state.items()}
    for rows in batches:
        _, w, state = ref.train_step(spec, w, state, x[rows], y[rows])
    return w, state


def agreement(spec: Spec, start: dict, got: tuple[dict, dict], want: tuple[dict, dict], what: str) -> dict:
    """A row's (weights, optimizer state) against the reference's after the same steps from
    `start`: weights at the gate's tolerance of how far the reference moved them, the step count
    exactly and each optimizer slot at its own scale."""
    t = tol(spec.training.dtype, "gate")
    moved = max(float(np.max(np.abs(want[0][k] - np.asarray(start[k], np.float64)))) for k in want[0])
    bad = [k for k, v in got[0].items() if not np.all(np.isfinite(v))]
    weights, each = compare_sets(got[0], want[0], t, scale=moved)
    state = compare_state(got[1], want[1], t)[0] if want[1] else None
    worst = weights if state is None or weights.ratio >= state.ratio else state
    return {"what": what, "worst_ratio": worst.ratio, "worst_entry": worst.where, "bits": weights.bits,
            "reference_moved": moved, "ok": bool(not bad and worst.passed and moved > 0)}


def _batches(order: np.ndarray, bs: int, first: int, stop: int, tail: bool) -> list[np.ndarray]:
    out = [order[i * bs:(i + 1) * bs] for i in range(first, stop)]
    return out + ([order[stop * bs:]] if tail and len(order) > stop * bs else [])


def loop_gate(framework: str, model, spec: Spec, x: np.ndarray, y: np.ndarray, steps: int) -> dict:
    """The fast row's timed loop (fast.compile_epoch for len(x) examples: the one its fit reuses)
    checked as the module docstring says, `steps` batches at the start of each epoch; the model is
    left at the canonical start with a fresh state. build_seconds: building the loop (compiling it)."""
    fw, n, bs = frameworks.get(framework), len(x), spec.training.batch_size
    api, fast = fw.book(), fw.fast()
    began = time.perf_counter()
    epoch = fast.compile_epoch(model, spec, n)
    build = time.perf_counter() - began
    xs, ts = fast.epoch_inputs(model, spec, x, y)
    full, k = n // bs, min(steps, n // bs)
    w0 = ref.start_weights(spec, spec.training.seed)
    s0 = ref.init_state(spec, w0)

    def load(w, s):
        api.set_weights(model, w)
        api.set_optimizer_state(model, spec, s)

    def state() -> tuple[dict, dict]:
        return api.get_weights(model), api.get_optimizer_state(model, spec)
    first, second = epoch_order(spec, 0, n), epoch_order(spec, 1, n)
    checks = []
    load(w0, s0)
    epoch(xs, ts, first, k)
    want = reference_steps(spec, w0, s0, x, y, _batches(first, bs, 0, k, False))
    checks.append(agreement(spec, w0, state(), want, f"epoch 1, batches 1-{k}"))
    load(w0, s0)
    epoch(xs, ts, first, full - 1)
    before = state()
    epoch(xs, ts, first, full, full - 1)  # the last full batch, then the short one
    last = state()
    want = reference_steps(spec, *before, x, y, _batches(first, bs, full - 1, full, True))
    checks.append(agreement(spec, before[0], last, want, f"epoch 1, batch {full} of {full}"
                            + (f" and the last {n - full * bs} examples" if n > full * bs else "")))
    epoch(xs, ts, second, k)
    want = reference_steps(spec, *last, x, y, _batches(second, bs, 0, k, False))
    checks.append(agreement(spec, last[0], state(), want, f"epoch 2, batches 1-{k}"))
    load(w0, s0)
    return {"checks": checks, "tier": epoch.tier, "build_seconds": build, "ok": all(c["ok"] for c in checks)}


def parity_gate(api, spec: Spec, device: str, data: tuple, steps: int) -> dict:
    """A book row: fit on its first `steps` batches from the canonical weights against the float64
    reference taking the same steps in the same (shared) order."""
    bs, n = spec.training.batch_size, steps * spec.training.batch_size
    x, y, x_eval, y_eval = data
    w0 = ref.start_weights(spec, spec.training.seed)
    model = api.build_model(spec, device=device)
    api.set_weights(model, w0)
    api.fit(model, spec, (x[:n], y[:n], x_eval[:1], y_eval[:1]), epochs=1)  # Diverged on a non-finite loss
    got = (api.get_weights(model), api.get_optimizer_state(model, spec))
    bad = [k for k, v in got[0].items() if not np.all(np.isfinite(v))]
    if bad:
        raise Diverged(spec.name, 1, f"{bad[0]} in the parity gate", "not finite")
    order = epoch_order(spec, 0, n)
    want = reference_steps(spec, w0, ref.init_state(spec, w0), x, y, _batches(order, bs, 0, steps, False))
    check = agreement(spec, w0, got, want, f"fit on the first {steps} batches")
    return {"checks": [check], "steps": steps, "ok": check["ok"]}


def floor_gate(floor, spec: Spec, data: tuple, steps: int) -> dict:
    """A floor (or the JAX peer), built from the canonical weights: its first `steps` batches
    against the reference (this also compiles it, so its first timed epoch does not)."""
    bs, n = spec.training.batch_size, steps * spec.training.batch_size
    x, y = np.ascontiguousarray(data[0][:n].reshape(n, -1)), data[1][:n]
    w0 = ref.start_weights(spec, spec.training.seed)
    order = epoch_permutation(spec.training.seed, 0, n)
    floor.train_epoch(x, y, order)
    want = reference_steps(spec, w0, ref.init_state(spec, w0), x, y, _batches(order, bs, 0, steps, False))
    check = agreement(spec, w0, (floor.weights(), {}), (want[0], {}), f"the first {steps} batches")
    return {"checks": [check], "steps": steps, "ok": check["ok"]}


def floor_check(spec: Spec, x: np.ndarray, y: np.ndarray, epochs: list[dict]) -> dict:
    """A timed row's epochs (`loss`, `accuracy`: its own running means over each epoch) against the
    C floor trained from the same start on the same orders; {"ok": None, "reason"} without a floor."""
    from bench import cfloor
    from bench.floor import Floor, unsupported
    n, why = len(x), unsupported(spec)
    if why is None:
        try:
            cfloor.load("conf5" if spec.optimizer.name == "adam" else "conf1")
        except cfloor.CFloorUnavailable as exc:
            why = str(exc)
    if why:
        return {"ok": None, "reason": f"not checked: {why}"}
    floor, x2, order = Floor(spec, ref.start_weights(spec, spec.training.seed)), x.reshape(n, -1), epoch_order(spec, 0, n)
    rows, ok = [], True
    for k, row in enumerate(epochs):
        perm = data_order(spec, k, n)
        want = floor.train_epoch(np.ascontiguousarray(x2[perm]), y[perm], order)
        t, acc = (EPOCH_FIRST, EPOCH_ACCURACY["first"]) if k == 0 else (EPOCH_LATER, EPOCH_ACCURACY["later"])
        loss_ok = abs(row["loss"] - want["loss"]) <= t.rtol * abs(want["loss"])
        acc_ok = abs(row["accuracy"] - want["accuracy"]) <= acc
        rows.append({"epoch": k + 1, "loss": row["loss"], "floor_loss": want["loss"], "loss_rtol": t.rtol,
                     "accuracy": row["accuracy"], "floor_accuracy": want["accuracy"], "accuracy_atol": acc,
                     "ok": bool(loss_ok and acc_ok)})
        ok = ok and rows[-1]["ok"]
    bad = next((r for r in rows if not r["ok"]), None)
    reason = None if bad is None else (
        f"epoch {bad['epoch']}: train loss {bad['loss']:.6g} vs the floor's {bad['floor_loss']:.6g} (rtol "
        f"{bad['loss_rtol']:g}), accuracy {bad['accuracy']:.4f} vs {bad['floor_accuracy']:.4f} (within {bad['accuracy_atol']:g})")
    return {"ok": ok, "epochs": rows, "reason": reason}
