"""Convnet stacks in both frameworks against the float64 oracle, in float32 and float64 on every
device present: inference logits and loss, training loss and every gradient (dropout with the
shared masks), and a trajectory of Adam steps (weights, optimizer state, moving statistics).

The stacks are small (a few filters) so that the suite stays quick; they carry the porting traps
of the two flagship examples: NHWC vs NCHW, HWIO vs OIHW kernels, the flatten order feeding a
dense layer (a dropout between them too), 'same' padding with strides, batch norm over images."""
from __future__ import annotations

import numpy as np
import pytest

import parity_tests.harness as H
from common.config import load_spec, validate
from common.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from common.spec import Network
from parity_tests.harness.data import batches

IMAGES = (28, 28, 1)
STACKS = {
    # keras-io's "Simple MNIST convnet", with fewer filters
    "keras-like": Network(input_shape=IMAGES, layers=(
        Conv2D(filters=4, activation="relu"), MaxPool2D(), Conv2D(filters=6, activation="relu"), MaxPool2D(),
        Flatten(), Dropout(rate=0.5), Dense(units=10, activation="softmax"))),
    # pytorch/examples' mnist/main.py, with fewer filters and units
    "torch-like": Network(input_shape=IMAGES, layers=(
        Conv2D(filters=4, activation="relu"), Conv2D(filters=6, activation="relu"), MaxPool2D(), Dropout(rate=0.25),
        Flatten(), Dense(units=16, activation="relu"), Dropout(rate=0.5), Dense(units=10, activation="softmax"))),
    # what neither example has: same padding with strides, batch norm over images, an activation layer
    "strided-bn": Network(input_shape=IMAGES, layers=(
        Conv2D(filters=4, kernel_size=(4, 3), strides=(2, 2), padding="same", activation="tanh"),
        BatchNormalization(momentum=0.9, epsilon=1e-3), Activation(activation="leaky_relu", leaky_relu_slope=0.2),
        MaxPool2D(pool_size=(3, 3), strides=(2, 2)), Flatten(), Dense(units=10, activation="softmax"))),
}


def convnet_spec(name: str, dtype: str):
    spec = H.replace(load_spec("conf5"), network=STACKS[name], name=name,
                     **{"training.batch_size": 16, "training.dtype": dtype})
    validate(spec)
    return spec


CASES = [(name, dtype) for name in STACKS for dtype in ("float32", "float64")]


@pytest.mark.parametrize("device", H.devices())
@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_convnet_forward_loss_and_gradients(name, dtype, device):
    spec = convnet_spec(name, dtype)
    (x, y), = batches(16, 1, seed=3)
    H.check_forward_and_gradients(spec, seed=5, x=x, y=y, what=f"{name} {dtype} on {device}", device=device)


@pytest.mark.parametrize("device", H.devices())
@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_convnet_trajectory(name, dtype, device):
    """Adam steps with a new dropout mask each step, every quantity compared after each."""
    H.run_trajectory(convnet_spec(name, dtype), seed=7, steps=6, what=f"{name} {dtype} on {device}", device=device)


def test_the_stacks_hold_the_traps():
    """The flatten of an image feeds a dense layer (through a dropout in keras-like), and masks
    differ from step to step: what the planted bugs of issue 31 break."""
    from common.masks import step_masks
    spec = convnet_spec("keras-like", "float64")
    m0, m1 = step_masks(spec, 1, 0, 16), step_masks(spec, 1, 1, 16)
    assert m0["dropout"].shape == (16, 150) and not np.array_equal(m0["dropout"], m1["dropout"])


@pytest.mark.parametrize("device", H.devices())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keras_convnet_preset_trajectory(dtype, device):
    """The keras_convnet preset at full size: 3 Adam steps on batches of 128, new masks each step."""
    spec = H.replace(load_spec("keras_convnet"), **{"training.dtype": dtype})
    H.run_trajectory(spec, seed=7, steps=3, what=f"keras_convnet {dtype} on {device}", device=device)


@pytest.mark.parametrize("device", H.devices())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_mnist_preset_trajectory(dtype, device):
    """The torch_mnist preset at full size: 3 Adadelta steps (lr 1.0) on batches of 64, log_softmax +
    NLL, new masks for both dropout layers (one over images, before the flatten) each step."""
    spec = H.replace(load_spec("torch_mnist"), **{"training.dtype": dtype})
    H.run_trajectory(spec, seed=7, steps=3, what=f"torch_mnist {dtype} on {device}", device=device)


@pytest.mark.parametrize("optimizer", ["sgd", "adadelta"])
@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_resumed_run_draws_the_masks_it_would_have(fw, optimizer):
    """Neither optimizer counts steps of its own accord (PyTorch's SGD keeps no count), yet a run
    resumed from its weights and optimizer state draws the dropout masks of the steps it goes on
    with: its state keeps `step` (common.canonical.counts_steps), and the run ends where the
    uninterrupted one does."""
    from parity_tests import design as D
    spec = H.replace(convnet_spec("torch-like", "float64"), optimizer=D.FORMS[optimizer])
    impl, steps = H.impl(fw), batches(16, 4, seed=3)

    def model(weights, state=None):
        m = impl.build_model(spec, seed=1)
        impl.set_weights(m, weights)
        impl.set_optimizer_state(m, spec, state) if state else None
        return m
    w = H.canonical_weights(spec, 5)
    whole, first = model(w), model(w)
    for xb, yb in steps:
        impl.train_step(whole, spec, xb, yb)
    for xb, yb in steps[:2]:
        impl.train_step(first, spec, xb, yb)
    resumed = model(impl.get_weights(first), impl.get_optimizer_state(first, spec))
    assert float(impl.get_optimizer_state(resumed, spec)["step"]) == 2
    for xb, yb in steps[2:]:
        impl.train_step(resumed, spec, xb, yb)
    H.assert_equal(impl.get_weights(resumed), impl.get_weights(whole), f"{fw} {optimizer} resumed vs whole")
