"""Two runs side by side, step by step: after every step every tensor of side A against
side B through the comparison core (common.compare) at the parity suite's tolerances
(common.tolerances), and where they part first."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from common import canonical
from common import reference as ref
from common.compare import compare
from common.data import epoch_permutation, load_mnist, preprocessing
from common.tolerances import tol, trajectory_quantities
from twinbench.diff.localise import localise
from twinbench.diff.sides import Side, runner

PROBE = 256  # test images whose logits are compared after every step
STEP_CAP = 1000  # --steps default: one epoch's worth, at most this many


@dataclass
class Trace:
    """The comparison of two runs: per step, per tensor {kind, max_abs, max_rel, bits, ratio}."""

    a: Side
    b: Side
    dtype: str                      # the coarser of the two: comparisons and bits are in it
    steps: list[dict] = field(default_factory=list)
    first: dict | None = None       # the first (step, tensor) beyond tolerance
    layers: dict | None = None      # localisation at the start weights (twinbench.diff.localise)

    def tensors(self) -> list[str]:
        return list(self.steps[0]["tensors"]) if self.steps else []

    def series(self, name: str, key: str) -> list[float]:
        return [s["tensors"][name][key] for s in self.steps]

    def growth(self, name: str) -> dict:
        """How the relative difference of one tensor evolved: first nonzero, last, per step."""
        rel = self.series(name, "max_rel")
        nz = [(k, r) for k, r in enumerate(rel, 1) if r > 0 and math.isfinite(r)]
        if not nz:
            return {"first_step": None, "first": 0.0, "last": rel[-1] if rel else 0.0, "per_step": None}
        (k0, r0), (k1, r1) = nz[0], nz[-1]
        per_step = (r1 / r0) ** (1.0 / (k1 - k0)) if k1 > k0 else None
        return {"first_step": k0, "first": r0, "last": rel[-1], "per_step": per_step}


def coarse(a: Side, b: Side) -> str:
    return "float32" if "float32" in (a.dtype, b.dtype) else "float64"


def batches(spec, steps: int, dtype: str):
    """The training batches both sides take: the shared shuffle order, epoch after epoch."""
    x, y, x_test, _ = load_mnist(dtype=dtype, **preprocessing(spec))
    x = x.reshape(len(x), -1).astype(np.float64)
    bs, n = spec.training.batch_size, len(x)
    per_epoch = -(-n // bs)
    for k in range(steps):
        epoch, i = divmod(k, per_epoch)
        order = epoch_permutation(spec.training.seed, epoch, n) if spec.training.shuffle else np.arange(n)
        rows = order[i * bs:(i + 1) * bs]
        yield x[rows], y[rows]


def default_steps(spec, epochs: int | None, steps: int | None) -> int:
    per_epoch = -(-60_000 // spec.training.batch_size)
    if epochs:
        return epochs * per_epoch
    return steps if steps else min(per_epoch, STEP_CAP)


def run(a: Side, b: Side, steps: int, edit_a: Callable | None = None, edit_b: Callable | None = None,
        progress: Callable[[int], None] | None = None) -> Trace:
    """Both sides from the same canonical weights over the same `steps` batches."""
    dtype = coarse(a, b)
    w0 = {k: v.astype(dtype).astype(np.float64) for k, v in ref.init_weights(a.spec, a.spec.training.seed).items()}
    ra, rb = runner(a, w0, edit_a), runner(b, w0, edit_b)
    _, _, x_test, _ = load_mnist(dtype=dtype, **preprocessing(a.spec))
    probe = x_test[:PROBE].reshape(PROBE, -1).astype(np.float64)
    trace = Trace(a, b, dtype)
    data = batches(a.spec, steps, dtype)
    first = next(batches(a.spec, 1, dtype))
    trace.layers = localise(ra, rb, a.spec, first[0], first[1], dtype)
    qw, qs, ql = trajectory_quantities(b.spec)
    for k, (x, y) in enumerate(data, 1):
        (la, ga), (lb, gb) = ra.gradients(x, y), rb.gradients(x, y)
        ra.step(x, y), rb.step(x, y)
        wa, wb = ra.weights(), rb.weights()
        # in causal order within the step: what the step computed at the old weights, what it updated,
        # then what the new weights give; the first tensor beyond tolerance is where the runs part
        groups = [("loss", {"loss": (la, lb)}, ql if k > 1 else "loss"),
                  ("gradient", {f"grad:{n}": (ga[n], gb[n]) for n in gb}, "gradients" if k == 1 else qw),
                  ("optimizer state", _state_pairs(ra.state(), rb.state()), qs),
                  ("weight", {n: (wa[n], wb[n]) for n in wb if not canonical.is_moving(n)}, qw),
                  ("moving statistic", {n: (wa[n], wb[n]) for n in wb if canonical.is_moving(n)}, qw),
                  ("logits", {"logits": (ra.logits(probe), rb.logits(probe))}, qw)]
        row = {}
        for kind, pairs, quantity in groups:
            row.update(_compare_group(kind, pairs, tol(dtype, quantity), dtype))
        trace.steps.append({"step": k, "tensors": row})
        if trace.first is None:
            bad = next(((n, r) for n, r in row.items() if r["ratio"] > 1), None)
            if bad:
                trace.first = {"step": k, "tensor": bad[0], **bad[1]}
        progress(k) if progress else None
    return trace


def _state_pairs(sa: dict, sb: dict) -> dict:
    """Optimizer state entries both sides keep (Keras and torch agree on the canonical names);
    a missing entry (e.g. one side has no step count) is skipped, not compared."""
    return {f"state:{n}": (sa[n], sb[n]) for n in sb if n in sa and n != "step"}


def _compare_group(kind: str, pairs: dict, t, dtype: str) -> dict:
    """Each tensor of a group against its counterpart, with the group's scale (as the parity suite)."""
    scale = max((float(np.max(np.abs(np.asarray(b, np.float64)))) for _, b in pairs.values() if np.size(b)),
                default=0.0)
    out = {}
    for name, (a, b) in pairs.items():
        c = compare(np.asarray(a), np.asarray(b), t, scale, name, dtype)
        out[name] = {"kind": kind, "max_abs": c.max_abs, "max_rel": c.max_rel, "bits": c.bits, "ratio": c.ratio}
    return out


def to_json(trace: Trace) -> dict:
    """Everything a trace holds, JSON-ready (common.files.write_json makes it strict)."""
    return {"a": {"side": trace.a.text, "framework": trace.a.framework, "dtype": trace.a.dtype,
                  "spec": dataclasses.asdict(trace.a.spec)},
            "b": {"side": trace.b.text, "framework": trace.b.framework, "dtype": trace.b.dtype,
                  "spec": dataclasses.asdict(trace.b.spec)},
            "dtype": trace.dtype, "first_divergence": trace.first, "layers": trace.layers,
            "growth": {n: trace.growth(n) for n in trace.tensors()}, "steps": trace.steps}
