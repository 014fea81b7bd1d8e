"""What every `fit` (book and fast, both frameworks) promises besides the arithmetic: one row
per epoch with exactly the documented keys, epochs counted as Keras counts them (from
initial_epoch), each epoch's shared order (or none without shuffling), the callbacks, no output
of its own, and the stop on divergence. (Mutation testing found these unchecked.)"""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import frameworks
from common import canonical
from common import spec as S
from common.history import Diverged
from parity_tests import harness as H
from parity_tests.test_fast import BASE, N_TAIL, epoch_data

KEYS = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
SPEC = H.replace(BASE, **{"optimizer.learning_rate": 0.001})
VARIANTS = [pytest.param(fw, v, id=f"{fw}-{v}") for fw in H.FRAMEWORKS for v in frameworks.VARIANTS]


def build(fw: str, spec):
    impl = H.impl(fw)
    model = impl.build_model(spec, seed=1)
    impl.set_weights(model, H.canonical_weights(spec, 43))
    return model


class Bar:
    """A stand-in progress bar: what fit reports to it."""

    def __init__(self, epoch: int, log: list):
        self.epoch, self.steps, self.closed = epoch, 0, False
        log.append(self)

    def update(self, n: int = 1):
        self.steps += n

    def close(self):
        self.closed = True


@pytest.mark.parametrize("fw,variant", VARIANTS)
def test_rows_callbacks_and_silence(fw: str, variant: str, capfd):
    api, data = frameworks.get(fw).variant(variant), epoch_data(SPEC, N_TAIL)
    model, seen, bars = build(fw, SPEC), [], []
    start = time.perf_counter()
    history = api.fit(model, SPEC, data, epochs=2, on_epoch=seen.append, progress=lambda e: Bar(e, bars))
    wall = time.perf_counter() - start
    # a fast fit's first row also says which tier built its epoch and how long that took (common.epochs)
    first = KEYS | ({"tier", "compile_seconds"} if variant == "fast" else set())
    assert [set(r) for r in history] == [first, KEYS] and [r["epoch"] for r in history] == [1, 2]
    assert variant == "book" or (history[0]["tier"] in ("xla", "tuned", "loop") and history[0]["compile_seconds"] > 0)
    assert seen == history  # on_epoch got every row, in order
    assert all(0 < r["seconds"] <= wall and 0 <= r["val_accuracy"] <= 1 for r in history)
    steps = -(-N_TAIL // SPEC.training.batch_size)
    assert [(b.epoch, b.steps, b.closed) for b in bars] == [(0, steps, True), (1, steps, True)]
    out = capfd.readouterr().out
    assert out == "", f"{fw} {variant} fit printed: {out[:200]!r}"
    _, _, losses, hits = H.ref_epoch(SPEC, H.canonical_weights(SPEC, 43), data[0], data[1])
    H.assert_close(history[0]["loss"], float(np.mean(losses)), "float32", "loss", f"{fw} {variant} epoch 1 loss")
    # train accuracy: each batch's predictions before its update, over the whole epoch; one example of
    # slack, as a float32 prediction may fall on the other side of a near-tie than float64's
    assert abs(history[0]["accuracy"] - hits.mean()) <= 1 / N_TAIL, (fw, variant, history[0]["accuracy"], hits.mean())


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_optimizer_state_is_canonical(fw: str):
    """Every state entry in the canonical layout: the names, shapes and the spec's dtype (the step count
    too); a state that does not fit is refused, named as optimizer state."""
    impl, data = H.impl(fw), epoch_data(SPEC, N_TAIL)
    model = build(fw, SPEC)
    frameworks.get(fw).variant("book").fit(model, SPEC, data, epochs=1)
    state = impl.get_optimizer_state(model, SPEC)
    assert {k: v.shape for k, v in state.items()} == canonical.state_shapes(SPEC)
    assert {k: str(v.dtype) for k, v in state.items()} == {k: SPEC.training.dtype for k in state}
    assert state["step"] == -(-N_TAIL // SPEC.training.batch_size)
    with pytest.raises(ValueError, match=r"^optimizer state: missing \['step'\]"):
        impl.set_optimizer_state(model, SPEC, {k: v for k, v in state.items() if k != "step"})


@pytest.mark.parametrize("fw,variant", VARIANTS)
def test_initial_epoch_and_unshuffled_order(fw: str, variant: str):
    """fit(initial_epoch=1) takes epoch 1's order (= the second epoch of a run); shuffle off
    takes the data as given."""
    api, data, impl = frameworks.get(fw).variant(variant), epoch_data(SPEC, N_TAIL), H.impl(fw)
    whole = build(fw, SPEC)
    api.fit(whole, SPEC, data, epochs=2)
    resumed = build(fw, SPEC)
    api.fit(resumed, SPEC, data, epochs=1)
    history = api.fit(resumed, SPEC, data, epochs=2, initial_epoch=1)
    assert [r["epoch"] for r in history] == [2]
    H.assert_close(impl.get_weights(resumed), impl.get_weights(whole), SPEC.training.dtype, "trajectory",
                   f"{fw} {variant}: epoch 2 alone vs a two-epoch run")
    plain = H.replace(SPEC, **{"training.shuffle": False})
    model = build(fw, plain)
    api.fit(model, plain, data, epochs=1)
    rw, _, _, _ = H.ref_epoch(plain, H.canonical_weights(plain, 43), data[0], data[1])
    H.assert_close(impl.get_weights(model), rw, plain.training.dtype, "trajectory", f"{fw} {variant} unshuffled")


@pytest.mark.parametrize("fw,variant", VARIANTS)
def test_divergence_names_the_spec_and_epoch(fw: str, variant: str):
    spec = H.replace(SPEC, **{"name": "explode", "optimizer.learning_rate": 1e30})
    api, rows = frameworks.get(fw).variant(variant), []
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with pytest.raises(Diverged, match="explode: diverged in epoch 1"):
            api.fit(build(fw, spec), spec, epoch_data(spec, N_TAIL), epochs=3, on_epoch=rows.append)
    assert len(rows) == 1  # the epoch is reported, then the run stops
    # a fast path's self-check agrees with the book's steps when both diverge: the tier is kept
    assert not [str(w.message) for w in said if "tier" in str(w.message)]


def test_tf_compiled_epoch_is_reused():
    """tf_impl.fast compiles an epoch once per model and step: another seed or name compiles nothing."""
    fast, model = frameworks.get("tf").fast(), build("tf", SPEC)
    first = fast.compile_epoch(model, SPEC, N_TAIL)
    assert fast.compile_epoch(model, H.replace(SPEC, **{"training.seed": 99, "name": "other"}), N_TAIL) is first


def test_torch_compiled_loop_is_reused():
    """torch_impl.fast compiles a loop once per step, shared by the models of a spec."""
    fast = frameworks.get("torch").fast()
    fast.compile_epoch(build("torch", SPEC), SPEC, N_TAIL)
    loops = dict(fast._LOOPS)
    other = H.replace(SPEC, **{"training.seed": 99, "name": "other"})
    fast.compile_epoch(build("torch", other), other, N_TAIL)
    assert fast._LOOPS == loops


INITS = ["he_normal", "glorot_normal", "he_uniform", "glorot_uniform", "uniform"]


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
@pytest.mark.parametrize("truncated", [False, True])
def test_build_is_seeded(fw: str, truncated: bool):
    """build_model(spec, seed) draws from the seed alone: the same seed twice gives the same weights
    (a draw from the framework's global generator would not), another seed others."""
    impl = H.impl(fw)
    for name in INITS:
        init = S.Initializer(name, **({"truncated": truncated} if name.endswith("_normal") else {}))
        spec = H.replace(SPEC, **{"network.hidden_kernel_init": init, "network.output_kernel_init": init})
        a, b, c = (impl.get_weights(impl.build_model(spec, seed=s)) for s in (5, 5, 6))
        for k in ("hidden/kernel", "output/kernel"):
            assert np.array_equal(a[k], b[k]), f"{fw} {name} truncated={truncated}: seed 5 twice, {k} differs"
            assert not np.array_equal(a[k], c[k]), f"{fw} {name}: seeds 5 and 6 give the same {k}"
