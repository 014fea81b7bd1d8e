"""The reference's layer-by-layer pass over any stack (common.reference.network): on the chapter
MLP it computes bitwise what the MLP's own pass does; on a convnet with every layer type its
gradients match finite differences; and the shared dropout masks (common.masks)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from common import masks as M
from common import reference as ref
from common.config import load_spec, replace, validate
from common.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from common.reference import network as N
from common.reference.model import loss_gradients_and_cache as mlp_pass
from common.spec import Network

MLPS = [("conf1", {}), ("conf3", {}), ("conf5", {}), ("conf5", {"network.batch_norm.mode": "before_activation"}),
        ("conf4", {"network.batch_norm.mode": "after_activation", "network.hidden_activation": "leaky_relu",
                   "network.leaky_relu_slope": 0.2, "training.batch_size": 8})]


@pytest.mark.parametrize("preset,changes", MLPS, ids=["conf1", "conf3", "conf5", "conf5-bn-before", "conf4-bn-after-leaky"])
def test_the_stack_pass_is_the_mlp_pass_bitwise(preset, changes):
    spec = replace(load_spec(preset), **changes)
    w = ref.init_weights(spec, 3)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 784)), rng.integers(0, 10, size=8)
    loss, grads, c = mlp_pass(w, spec, x, y)
    loss2, grads2, c2 = N.loss_gradients_and_cache(w, spec, x, y)
    assert loss == loss2 and np.array_equal(c["z2"], c2["z2"]) and np.array_equal(c["p"], c2["p"])
    assert list(grads) == list(grads2) and all(np.array_equal(grads[k], grads2[k]) for k in grads)


CONVNET = Network(input_shape=(9, 8, 2), layers=(
    Conv2D(filters=3, kernel_size=(3, 2), strides=(2, 1), padding="same", activation="tanh",
           bias_init=dataclasses.replace(Dense().kernel_init, name="glorot_uniform")),
    BatchNormalization(epsilon=0.01), Activation(activation="leaky_relu", leaky_relu_slope=0.2),
    MaxPool2D(pool_size=(2, 2), strides=(1, 1)), Conv2D(filters=4, activation="sigmoid"), Flatten(),
    Dropout(rate=0.4), Dense(units=6, activation="relu"), Dense(units=10, activation="softmax")))


def convnet_problem():
    spec = replace(load_spec("conf5"), network=CONVNET, **{"training.batch_size": 3, "training.dtype": "float64"})
    validate(spec)
    w, rng = ref.init_weights(spec, 4), np.random.default_rng(2)
    x, y = rng.normal(size=(3, 9, 8, 2)), np.array([1, 7, 3])
    masks = {"dropout": M.keep_mask(M.step_key(1, 0, 6), (3, 40), 0.4)}
    return spec, w, x, y, masks


def test_convnet_gradients_match_finite_differences():
    spec, w, x, y, masks = convnet_problem()
    _, grads, _ = N.loss_gradients_and_cache(w, spec, x, y, masks)
    assert list(grads) == ["conv2d/kernel", "conv2d/bias", "batch_norm/gamma", "batch_norm/beta", "conv2d_1/kernel",
                           "conv2d_1/bias", "dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    rng, h = np.random.default_rng(9), 1e-6
    for name, g in grads.items():
        for _ in range(4):
            i = tuple(rng.integers(0, s) for s in g.shape)
            up, down = ({**w, name: w[name].copy()} for _ in range(2))
            up[name][i] += h
            down[name][i] -= h
            numeric = (N.loss_gradients_and_cache(up, spec, x, y, masks)[0] -
                       N.loss_gradients_and_cache(down, spec, x, y, masks)[0]) / (2 * h)
            assert g[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, i)


def test_convnet_trains_and_updates_the_moving_statistics():
    spec, w, x, y, masks = convnet_problem()
    state = ref.init_state(spec, w)
    loss, w1, _ = ref.train_step(spec, w, state, x, y, masks)
    assert np.isfinite(loss) and not np.array_equal(w1["conv2d/kernel"], w["conv2d/kernel"])
    assert not np.array_equal(w1["batch_norm/moving_mean"], w["batch_norm/moving_mean"])
    with pytest.raises(ValueError, match="dropout layer 'dropout' in training needs its mask"):
        ref.train_step(spec, w, state, x, y)
    assert 0.0 <= ref.evaluate(w1, spec, x, y)[1] <= 1.0


def test_masks_are_a_function_of_seed_step_and_layer():
    base = M.keep_mask(M.step_key(7, 10, 3), (64, 128), 0.5)
    assert np.array_equal(base, M.keep_mask(M.step_key(7, 10, 3), (64, 128), 0.5))
    for other in [(8, 10, 3), (7, 11, 3), (7, 10, 4), (7, 3, 10)]:
        assert np.mean(base != M.keep_mask(M.step_key(*other), (64, 128), 0.5)) == pytest.approx(0.5, abs=0.02)
    for rate in (0.25, 0.5):  # the kept fraction, over 2^20 draws
        assert np.mean(M.keep_mask(M.step_key(1, 0, 0), (1024, 1024), rate)) == pytest.approx(1 - rate, abs=2e-3)


def test_mask_formula_is_pinned():
    """Both frameworks compute these same bits on their own devices: the formula may not drift."""
    assert M.step_key(1, 0, 0) == 3600311843 and M.step_key(1, 937, 7) == 2190504405
    assert M.keep_mask(M.step_key(1, 0, 0), (2, 8), 0.5).astype(int).tolist() == [
        [1, 0, 0, 0, 1, 0, 1, 1], [1, 0, 0, 0, 1, 0, 1, 0]]
    assert M.threshold(0.5) == 2 ** 23 and M.threshold(0.25) == 2 ** 22
