"""The floors do the spec's training: their weights after a few updates match the float64
reference (common.reference.train_step) at the benchmark gate's tolerance, and so do the loss
and accuracy they report. The C floors (bench.floor) always; the JAX floor (bench.floor_jax)
on the CPU where jax is installed."""
from __future__ import annotations

import re
import sys
from dataclasses import replace

import numpy as np
import pytest

from bench.floor import Floor, unsupported
from common import reference as ref
from common.canonical import weight_shapes
from common.compare import compare_sets
from common.config import load_spec
from common.data import epoch_permutation
from common.tolerances import tol

# (preset, whole batches, extra examples (a short last batch), inputs, hidden units): the presets'
# shapes, then shapes no vector width or block size divides (795 = 49 x 16 + 8 + 3 = 24 x 32 + 16 + 11),
# so the C loops' remainder paths run too, with AVX2's vectors of 8 floats or AVX-512's of 16
CASES = [("conf1", 100, 0, 784, 25), ("conf5", 12, 0, 784, 25), ("conf5", 12, 37, 784, 25),
         ("conf1", 60, 0, 795, 23), ("conf5", 6, 37, 795, 23)]


def reference_run(spec, w0, x, y, order):
    """The reference over x[order] batch by batch: (weights after, loss sum, correct count)."""
    w, state, bs = w0, ref.init_state(spec, w0), spec.training.batch_size
    loss_sum, correct = 0.0, 0
    for s in range(0, len(order), bs):
        idx = order[s:s + bs]
        correct += round(ref.evaluate(w, spec, x[idx], y[idx])[1] * len(idx))  # before the update
        loss, w, state = ref.train_step(spec, w, state, x[idx], y[idx])
        loss_sum += loss * len(idx)
    return w, loss_sum, correct


def small_data(n: int, seed: int = 3, inputs: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """Standardized-looking float32 inputs and labels (the floor's math, not MNIST's)."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (n, inputs)).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)


def shaped(spec, inputs: int, hidden: int):
    """The spec with `hidden` units and `inputs` inputs."""
    mlp = replace(spec.network.mlp, hidden_units=hidden)
    return replace(spec, network=type(spec.network)(input_shape=(inputs,), layers=mlp.layers()))


def start_weights(spec) -> dict[str, np.ndarray]:
    """The preset's initial weights, or for other shapes uniform ones (biases too, not zero)."""
    if spec.network.input_units == 784 and spec.network.hidden_units == 25:
        return ref.init_weights(spec, spec.training.seed)
    rng = np.random.default_rng(5)
    return {k: rng.uniform(-0.1, 0.1, shape) for k, shape in weight_shapes(spec).items()}


def assert_matches_reference(make_floor, preset: str, steps: int, extra: int, inputs: int, hidden: int) -> None:
    """make_floor(spec, w0) trains `steps` batches (+ `extra` examples) like the reference."""
    spec = shaped(load_spec(preset), inputs, hidden)
    n = steps * spec.training.batch_size + extra
    x, y = small_data(n, inputs=inputs)
    order = epoch_permutation(spec.training.seed, 0, n)
    w0 = start_weights(spec)
    w0_32 = {k: v.astype(np.float32).astype(np.float64) for k, v in w0.items()}
    floor = make_floor(spec, w0)
    stats = floor.train_epoch(x, y, order)
    want, want_loss, want_correct = reference_run(spec, w0_32, x, y, order)
    moved = max(float(np.max(np.abs(want[k] - w0_32[k]))) for k in want)
    worst, _ = compare_sets(floor.weights(), want, tol("float32", "gate"), scale=moved)
    assert worst.passed, f"{preset}: {worst.where}"
    broken = {k: v + (moved if k == "output/bias" else 0) for k, v in floor.weights().items()}
    assert not compare_sets(broken, want, tol("float32", "gate"), scale=moved)[0].passed  # the check can fail
    assert stats["loss"] == pytest.approx(want_loss / n, rel=1e-4)
    assert abs(stats["accuracy"] * n - want_correct) <= 1  # a float32 near-tie may flip one argmax


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_floor_matches_reference(case: tuple) -> None:
    assert_matches_reference(Floor, *case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_jax_floor_matches_reference(case: tuple) -> None:
    pytest.importorskip("jax")
    from bench.floor_jax import JaxFloor
    assert_matches_reference(lambda spec, w0: JaxFloor(spec, w0, "cpu"), *case)


def test_jax_floor_says_why_not(monkeypatch) -> None:
    from bench import floor_jax
    monkeypatch.setitem(sys.modules, "jax", None)  # as if not installed: `import jax` raises ImportError
    assert "jax is not installed" in floor_jax.unavailable("cuda")
    with pytest.raises(ValueError, match="jax is not installed"):
        floor_jax.JaxFloor(load_spec("conf1"), ref.init_weights(load_spec("conf1"), 0), "cpu")
    conf4 = load_spec("conf4")
    with pytest.raises(ValueError, match=re.escape(unsupported(conf4))):  # the preset is checked first
        floor_jax.JaxFloor(conf4, ref.init_weights(conf4, 0), "cpu")


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


@pytest.mark.parametrize("preset", ["conf1", "conf5"])
def test_jax_program_computes_every_product_at_highest_precision(preset: str) -> None:
    """Every matrix product of the JAX step, its gradient's included, asks for HIGHEST precision:
    JAX's default lets recent GPUs use TF32, which the PyTorch rows keep off."""
    jax = pytest.importorskip("jax")
    from functools import partial

    from bench import floor_jax
    spec = load_spec(preset)
    w = ref.init_weights(spec, 0)
    params = tuple(jax.numpy.asarray(w[k], np.float32) for k in floor_jax.NAMES)
    x, y = small_data(4)
    closed = jax.make_jaxpr(jax.grad(lambda p: partial(floor_jax._loss, spec)(p, x, y)[0]))(params)

    def products(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                yield eqn.params["precision"]
            for sub in inner(eqn.params):
                yield from products(sub)
    from importlib import import_module
    inner = getattr(import_module("jax.extend.core"), "jaxprs_in_params", None) or jax.core.jaxprs_in_params
    found = list(products(closed.jaxpr))
    assert len(found) >= 4  # two forward products and their gradients
    highest = jax.lax.Precision.HIGHEST
    assert all(p == (highest, highest) for p in found), found
