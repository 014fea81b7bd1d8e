"""The floors do the spec's training: their weights after a few updates match the float64
reference (common.reference.train_step) at the benchmark gate's tolerance."""
from __future__ import annotations

import numpy as np
import pytest

from common import reference as ref
from common.config import load_spec
from common.data import epoch_permutation

pytest.importorskip("numba")
from bench.floor import Floor, unsupported  # noqa: E402
from common.compare import compare_sets  # noqa: E402
from common.tolerances import tol  # noqa: E402


def reference_steps(spec, w0, x, y, order, steps):
    """The reference's weights after `steps` batches of x[order]."""
    w, state, bs = w0, ref.init_state(spec, w0), spec.training.batch_size
    for s in range(steps):
        idx = order[s * bs:(s + 1) * bs]
        _, w, state = ref.train_step(spec, w, state, x[idx], y[idx])
    return w


def small_data(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Standardized-looking float32 inputs and labels (the floor's math, not MNIST's)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (n, 784)).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


@pytest.mark.parametrize("preset,steps", [("conf1", 100), ("conf5", 12)])
def test_floor_matches_reference(preset: str, steps: int) -> None:
    spec = load_spec(preset)
    n = steps * spec.training.batch_size
    x, y = small_data(n)
    order = epoch_permutation(spec.training.seed, 0, n)
    w0 = ref.init_weights(spec, spec.training.seed)
    w0_32 = {k: v.astype(np.float32).astype(np.float64) for k, v in w0.items()}
    floor = Floor(spec, w0)
    floor.train_epoch(x, y, order)
    want = reference_steps(spec, w0_32, x, y, order, steps)
    moved = max(float(np.max(np.abs(want[k] - w0_32[k]))) for k in want)
    worst, _ = compare_sets(floor.weights(), want, tol("float32", "gate"), scale=moved)
    assert worst.passed, f"{preset}: {worst.where}"
    broken = {k: v + (moved if k == "output/bias" else 0) for k, v in floor.weights().items()}
    assert not compare_sets(broken, want, tol("float32", "gate"), scale=moved)[0].passed  # the check can fail


def test_floor_learns_and_evaluates() -> None:
    spec = load_spec("conf1")
    x, y = small_data(200)
    floor = Floor(spec, ref.init_weights(spec, 0))
    stats = floor.train_epoch(x, y, np.arange(200))
    loss, acc = floor.evaluate(x, y)
    assert stats["seconds"] > 0 and 0 <= stats["accuracy"] <= 1 and np.isfinite(loss) and 0 <= acc <= 1
    want_loss, want_acc = ref.evaluate(floor.weights(), spec, x, y)
    assert acc == want_acc and loss == pytest.approx(want_loss, rel=1e-4)


def test_floor_refuses_other_presets() -> None:
    for name in ("conf1", "conf2", "conf5"):  # conf2 is conf1 with other initial weights
        assert unsupported(load_spec(name)) is None
    for name in ("conf3", "conf4"):
        assert unsupported(load_spec(name))
        with pytest.raises(ValueError, match="floor"):
            Floor(load_spec(name), ref.init_weights(load_spec(name), 0))
