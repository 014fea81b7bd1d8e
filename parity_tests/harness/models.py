"""Both frameworks built from the same canonical weights, and the forward-and-gradient check."""
from __future__ import annotations

import numpy as np

import frameworks
from common import reference as ref
from common.spec import Spec
from parity_tests.harness.checks import assert_equal, check_reported_losses, three_way

FRAMEWORKS = frameworks.NAMES


def impl(fw: str):
    """The implementation package of a framework name (imported lazily, after conftest
    pinned the numerics)."""
    return frameworks.get(fw).book()


def logits(fw: str, model, spec: Spec, x: np.ndarray) -> np.ndarray:
    """The output pre-activation z2 in inference mode."""
    return frameworks.get(fw).logits(model, spec, x)


def build_pair(spec: Spec, weights: dict[str, np.ndarray]) -> dict:
    """Every framework's model with the same canonical weights loaded; checks the load is exact."""
    models = {}
    for fw in FRAMEWORKS:
        m = impl(fw).build_model(spec, seed=1)
        impl(fw).set_weights(m, weights)
        assert_equal(impl(fw).get_weights(m), weights, f"{fw} get_weights after set_weights")
        models[fw] = m
    return models


def check_forward_and_gradients(spec: Spec, seed: int, x: np.ndarray, y: np.ndarray, what: str) -> None:
    """Same canonical weights in every framework and the oracle: inference logits,
    inference loss, training loss and every gradient tensor agree."""
    dtype = spec.training.dtype
    w = ref.start_weights(spec, seed)
    models = build_pair(spec, w)
    x = x.astype(dtype)
    z = {fw: logits(fw, models[fw], spec, x) for fw in FRAMEWORKS}
    z["ref"] = ref.forward(w, spec, x, training=False)["z2"]
    three_way(z, dtype, "forward", f"{what} logits")
    ev = {fw: impl(fw).evaluate(models[fw], spec, x, y) for fw in FRAMEWORKS}
    ev["ref"] = ref.evaluate(w, spec, x, y)
    check_reported_losses({k: v[0] for k, v in ev.items()}, dtype, f"{what} evaluate loss")
    # the same predictions: equal counts (Keras's accuracy tracker holds the fraction in float32)
    assert len({round(v[1] * len(y)) for v in ev.values()}) == 1, f"{what} evaluate accuracy {ev}"
    lg = {fw: impl(fw).loss_and_gradients(models[fw], spec, x, y) for fw in FRAMEWORKS}
    lg["ref"] = ref.loss_and_gradients(w, spec, x, y)
    three_way({k: v[0] for k, v in lg.items()}, dtype, "loss", f"{what} training loss")
    three_way({k: v[1] for k, v in lg.items()}, dtype, "gradients", f"{what} gradients")
    for fw in FRAMEWORKS:  # loss_and_gradients leaves the weights (moving statistics too) alone
        assert_equal(impl(fw).get_weights(models[fw]), w, f"{what} {fw} weights after loss_and_gradients")
