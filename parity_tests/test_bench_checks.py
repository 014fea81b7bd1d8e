"""The benchmark refuses a row whose timed loop is wrong where the fast paths' self-check does
not look (its first 8 steps): wrong only from step 100 on, only in the last batch, or only in
the middle of the epoch (found after timing, against the floor). Each plant wraps the epoch
that the fast path builds (compiled.epoch_function), so the self-check, the benchmark's gate
and the timed fit all run the planted loop; the unplanted loop passes every check."""
from __future__ import annotations

import numpy as np
import pytest

import frameworks
from bench import measure, verify
from bench.matrix import Row, Settings
from common.config import load_spec
from common.data import datasets
from parity_tests import harness as H

N = 1000  # conf1 (batch 1) on the first 1,000 images: 1,000 steps an epoch
SETTINGS = Settings(quick=True, quick_examples=N, rounds=1, startup=False)


@pytest.fixture(scope="module")
def data():
    return datasets(load_spec("conf1"))


def plant(monkeypatch, fw: str, wrong) -> None:
    """Every epoch the fast path builds reads its order through wrong(order) (a copy)."""
    compiled = __import__(f"{frameworks.get(fw).package}.compiled", fromlist=["epoch_function"])
    if fw == "torch":
        import torch_impl.fast
        monkeypatch.setattr(torch_impl.fast, "_LOOPS", {})
    real = compiled.epoch_function

    def epoch_function(*args, **kwargs):
        epoch = real(*args, **kwargs)

        def planted(x, t, order, *rest):
            return epoch(x, t, wrong(np.array(order)), *rest)
        planted.loop = getattr(epoch, "loop", None)
        return planted
    monkeypatch.setattr(compiled, "epoch_function", epoch_function)


def from_step_100(order):
    order[100:] = order[100]  # batch 100 again and again (batch 1: one example per step)
    return order


def last_batch(order):
    if len(order) == N:  # the epoch itself, not the self-check's
        order[-1] = order[0]
    return order


def middle(order):
    if len(order) == N:
        order[300:700] = order[300]
    return order


def measure_row(fw: str, data):
    return measure.measure_framework(Row(fw, "fast", "conf1", "cpu"), SETTINGS, load_spec("conf1"), data)


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_the_unplanted_loop_passes_every_check(fw: str, data):
    found = measure_row(fw, data)
    assert found["parity"]["ok"] and found["floor_check"]["ok"]
    assert [c["what"] for c in found["parity"]["checks"]] == ["epoch 1, batches 1-3", f"epoch 1, batch {N} of {N}",
                                                             "epoch 2, batches 1-3"]


@pytest.mark.parametrize("wrong, where", [(from_step_100, f"epoch 1, batch {N} of {N}"),
                                          (last_batch, f"epoch 1, batch {N} of {N}")])
@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_a_loop_wrong_after_the_self_checks_steps_is_not_timed(fw: str, wrong, where: str, data, monkeypatch):
    plant(monkeypatch, fw, wrong)
    with pytest.raises(verify.GateFailed, match=f"^{where}: differs from the float64 reference.*not timed"):
        measure_row(fw, data)


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_a_loop_wrong_in_the_middle_fails_the_floor_check_after_timing(fw: str, data, monkeypatch):
    plant(monkeypatch, fw, middle)
    with pytest.raises(verify.GateFailed, match="^after timing, epoch 1: train loss") as failed:
        measure_row(fw, data)
    found = failed.value.found
    assert found["parity"]["ok"] and found["floor_check"]["ok"] is False  # the gate could not see it
