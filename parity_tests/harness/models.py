"""Both frameworks built from the same canonical weights on one device, and the
forward-and-gradient check."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import frameworks
from common import reference as ref
from common.masks import step_masks
from common.reference.network import forward as stack_forward
from common.stack import walk
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


def kink_margin(spec: Spec, w: dict, x: np.ndarray) -> float:
    """How far the oracle's training pass on x stays from a kink, relative to each layer's scale:
    the smallest |pre-activation| of a relu / leaky_relu layer, and the smallest nonzero gap
    between a max-pool window's two largest inputs. Below float32's rounding (~1e-7) a float32
    pass may take the kink's other side: a relu unit off instead of on, or the gradient of a pool
    window sent to another input. Such a batch checks where the gradient jumps, not the mapping."""
    walked = walk(spec.network)
    c = stack_forward(w, spec, x, training=True, masks=step_masks(spec, BUILD_SEED, 0, len(x)))
    margins = [np.inf]
    for layer in walked[:-1]:
        lay, rec = layer.layer, c[layer.name]
        if getattr(lay, "activation", None) in ("relu", "leaky_relu"):
            pre = np.abs(rec["pre"])  # an exact zero (a zero input and bias) is computed exactly everywhere
            margins.append(pre[pre > 0].min() / pre.max() if np.any(pre > 0) else np.inf)
        if lay.type == "max_pool2d":
            u, (ph, pw), (sh, sw) = rec["in"], lay.pool_size, lay.strides
            oh, ow = rec["out"].shape[1:3]
            windows = np.stack([u[:, i:i + sh * oh:sh, j:j + sw * ow:sw] for i in range(ph) for j in range(pw)], -1)
            top = np.sort(windows, -1)[..., -2:]
            gaps = top[..., 1] - top[..., 0]
            margins.append(gaps[gaps > 0].min() / np.abs(u).max() if np.any(gaps > 0) else np.inf)
    return float(min(margins))
