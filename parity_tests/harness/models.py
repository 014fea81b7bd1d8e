"""Both frameworks built from the same canonical weights on one device, and the
forward-and-gradient check."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import frameworks
from common import reference as ref
from common.masks import step_masks
from common.spec import Spec
from parity_tests.harness.checks import assert_equal, check_reported_losses, three_way

FRAMEWORKS = frameworks.available()  # a machine with one framework checks that one against the oracle


@functools.cache
def frameworks_on(device: str) -> tuple[str, ...]:
    """The frameworks installed here that can run on `device` ('cpu': all of them)."""
    return tuple(fw for fw in FRAMEWORKS if frameworks.get(fw).device_unavailable(device) is None)


def devices() -> list:
    """pytest params of every device: 'cuda' skipped, with the reason, where no framework sees a GPU."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not frameworks_on("cuda"),
                                                                 reason="no framework sees a GPU here"))]


def impl(fw: str):
    """The implementation package of a framework name (imported lazily, after conftest
    pinned the numerics)."""
    return frameworks.get(fw).book()


def logits(fw: str, model, spec: Spec, x: np.ndarray) -> np.ndarray:
    """The output pre-activation z2 in inference mode."""
    return frameworks.get(fw).logits(model, spec, x)


BUILD_SEED = 1  # the models' own seed: their initializers' (overwritten) and the shared dropout masks'


def build_pair(spec: Spec, weights: dict[str, np.ndarray], device: str = "cpu") -> dict:
    """Every framework's model on `device` with the same canonical weights loaded; checks the load is exact."""
    models = {}
    for fw in frameworks_on(device):
        m = impl(fw).build_model(spec, seed=BUILD_SEED, device=device)
        impl(fw).set_weights(m, weights)
        assert_equal(impl(fw).get_weights(m), weights, f"{fw} get_weights after set_weights")
        models[fw] = m
    return models


def check_forward_and_gradients(spec: Spec, seed: int, x: np.ndarray, y: np.ndarray, what: str,
                                device: str = "cpu") -> None:
    """Same canonical weights in every framework (on `device`) and the oracle: inference
    logits, inference loss, training loss and every gradient tensor agree."""
    dtype = spec.training.dtype
    w = ref.start_weights(spec, seed)
    models = build_pair(spec, w, device)
    x = x.astype(dtype)
    z = {fw: logits(fw, models[fw], spec, x) for fw in models}
    z["ref"] = ref.forward(w, spec, x, training=False)["z2"]
    three_way(z, dtype, "forward", f"{what} logits")
    ev = {fw: impl(fw).evaluate(models[fw], spec, x, y) for fw in models}
    ev["ref"] = ref.evaluate(w, spec, x, y)
    check_reported_losses({k: v[0] for k, v in ev.items()}, dtype, f"{what} evaluate loss")
    # the same predictions: equal counts (Keras's accuracy tracker holds the fraction in float32)
    assert len({round(v[1] * len(y)) for v in ev.values()}) == 1, f"{what} evaluate accuracy {ev}"
    lg = {fw: impl(fw).loss_and_gradients(models[fw], spec, x, y) for fw in models}
    lg["ref"] = ref.loss_and_gradients(w, spec, x, y, step_masks(spec, BUILD_SEED, 0, len(x)))
    three_way({k: v[0] for k, v in lg.items()}, dtype, "loss", f"{what} training loss")
    three_way({k: v[1] for k, v in lg.items()}, dtype, "gradients", f"{what} gradients")
    for fw in models:  # loss_and_gradients leaves the weights (moving statistics too) alone
        assert_equal(impl(fw).get_weights(models[fw]), w, f"{what} {fw} weights after loss_and_gradients")
