"""The per-epoch step decay (training.schedule): PyTorch's StepLR stepped after each epoch and
Keras's ExponentialDecay(staircase=True) counting steps both train the oracle's trajectory, in
the book's fit and the fast one, and a run resumed from its checkpoint goes on at the rate it
stopped at."""
from __future__ import annotations

import numpy as np
import pytest

import frameworks
from common.config import load_spec
from common.epochs import epoch_order
from common.reference import init_state, train_step
from parity_tests import design as D
from parity_tests import harness as H

N, BS, EPOCHS, RESUME_AT = 200, 32, 5, 3  # 7 steps per epoch, the last one short; resumed mid-period


def _spec(optimizer: str, dtype: str):
    return H.replace(load_spec("conf5"), **{
        "optimizer": D.FORMS[optimizer], "training.batch_size": BS, "training.dtype": dtype,
        "training.epochs": EPOCHS, "training.schedule.gamma": 0.7, "training.schedule.step_epochs": 2})


def _data(dtype: str) -> tuple:
    x, y, _ = H.data_pool()
    return x[:N].astype(dtype), y[:N], x[-100:].astype(dtype), y[-100:]


def _oracle(spec, w: dict, x: np.ndarray, y: np.ndarray) -> tuple[dict, dict]:
    rw, rs = {k: np.asarray(v, np.float64) for k, v in w.items()}, init_state(spec, w)
    for epoch in range(EPOCHS):
        order = epoch_order(spec, epoch, N)
        for i in range(0, N, BS):
            _, rw, rs = train_step(spec, rw, rs, x[order[i:i + BS]], y[order[i:i + BS]], epoch=epoch)
    return rw, rs


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("variant", ["book", "fast"])
@pytest.mark.parametrize("optimizer", ["adadelta", "adam-keras", "sgd", "rmsprop-inside"])
@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_step_decay_resumed_run_follows_the_oracle(fw: str, optimizer: str, variant: str, dtype: str):
    """Epochs 0-2 in one model; then a new model loads its weights and optimizer state (as
    `train --resume` does) and trains epochs 3-4: the rate is x0.7 from epoch 2 and x0.49 from epoch 4
    (0-based), so the run resumes inside a period. gamma 0.7 is not exact in binary: StepLR's
    product and the oracle's power may differ in the last bit, well inside tolerance."""
    spec, data = _spec(optimizer, dtype), _data(dtype)
    H.register_config(f"schedule-{H.spec_id(spec)}")
    impl, api = H.impl(fw), frameworks.get(fw).variant(variant)
    w = H.canonical_weights(spec, 41)
    first = impl.build_model(spec, seed=1)
    impl.set_weights(first, w)
    api.fit(first, spec, data, epochs=RESUME_AT)
    resumed = impl.build_model(spec, seed=1)
    impl.set_weights(resumed, impl.get_weights(first))
    impl.set_optimizer_state(resumed, spec, impl.get_optimizer_state(first, spec))
    api.fit(resumed, spec, data, epochs=EPOCHS, initial_epoch=RESUME_AT)
    rw, rs = _oracle(spec, w, data[0], data[1])
    H.assert_close(impl.get_weights(resumed), rw, dtype, "trajectory", f"{fw} {variant} step decay vs oracle")
    H.assert_close(impl.get_optimizer_state(resumed, spec), rs, dtype, "state", f"{fw} {variant} state vs oracle")


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_a_fit_that_starts_elsewhere_than_its_state_is_refused(fw: str):
    """A decaying rate is each framework's own schedule, which agree only where a fit starts at the
    epoch its optimizer state is in: fitting again from epoch 0 after an epoch is an error."""
    spec, data = _spec("adadelta", "float64"), _data("float64")
    impl = H.impl(fw)
    model = impl.build_model(spec, seed=1)
    impl.fit(model, spec, data, epochs=1)
    with pytest.raises(ValueError, match=r"fit: initial_epoch 0, but the optimizer has taken 7 steps \(7 an epoch\)"
                                         r".*pass initial_epoch=1"):
        impl.fit(model, spec, data, epochs=1)


def test_the_decay_changes_the_trajectory():
    """The oracle at a constant rate is far from the decayed one: the test above can fail."""
    spec, (x, y, _, _) = _spec("adadelta", "float64"), _data("float64")
    w = H.canonical_weights(spec, 41)
    decayed = _oracle(spec, w, x, y)[0]
    constant = _oracle(H.replace(spec, **{"training.schedule.gamma": 1.0}), w, x, y)[0]
    assert H.rel_diff(decayed, constant) > 1e-3
