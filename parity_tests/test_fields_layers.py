"""Every field of every layer type reaches both frameworks (parity_tests/test_fields.py does the
same for the chapter MLP's short form, the loss, the optimizers and training). A small stack
holds each layer type once (two dense layers: the last one gives the 10 outputs); each probe
sets one field of one layer off its default (and off the frameworks' defaults), first shows
that the oracle moves beyond tolerance when that field goes back to its default, then checks
forward, loss, every gradient and three optimizer steps of both frameworks against the oracle
(dropout with the shared masks). Fields are walked from common.layers, so a field added later
is probed or must be listed, with its reason, in UNPROBED."""
from __future__ import annotations

import dataclasses

import pytest

from common.config import load_spec, validate
from common.layers import LAYERS, Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPool2D
from common.spec import Network
from parity_tests import harness as H
from parity_tests.test_fields import STEPS, SEED, _sensitivity

STACK = (Conv2D(filters=3, activation="relu"), BatchNormalization(momentum=0.9), MaxPool2D(),
         Conv2D(filters=4, activation="tanh"), Activation(activation="sigmoid"), Flatten(), Dropout(rate=0.25),
         Dense(units=6, activation="relu"), Dense(units=10, activation="softmax"))
BASE = H.replace(H.with_dtype(load_spec("conf5"), "float64"), network=Network(input_shape=(28, 28, 1), layers=STACK), **{"training.batch_size": 8})
UNPROBED = {
    "kernel_init": "the same make_initializer as the MLP's four tensors (test_fields.py probes each initializer "
                   "there); conv fans: parity_tests/test_initializers.py",
    "bias_init": "as kernel_init",
}
# field -> the probe value (off the layer's default and both frameworks' defaults)
VALUES = {"filters": 5, "units": 7, "kernel_size": (2, 3), "strides": (2, 1), "pool_size": (3, 2),
          "padding": "same", "leaky_relu_slope": 0.37, "rate": 0.53, "momentum": 0.53, "epsilon": 0.37,
          "running_variance": "unbiased"}
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "leaky_relu", "softmax")  # log_softmax: the last layer's only


def _probes() -> list:
    out = []
    for kind, cls in LAYERS.items():
        # the last layer of its type but the output layer: the first conv feeds batch norm, which would
        # make its bias a gauge direction with a linear activation (rounding noise, not compared)
        index = max(i for i, layer in enumerate(STACK[:-1]) if layer.type == kind)
        for f in dataclasses.fields(cls):
            if f.name in ("type", "name") or f.name in UNPROBED:
                continue
            if f.name == "activation":
                values = [a for a in ACTIVATIONS if a != getattr(STACK[index], "activation")]
            else:
                values = [VALUES[f.name]]
            for value in values:
                layer = dataclasses.replace(STACK[index], **{f.name: value})
                if f.name == "leaky_relu_slope":  # the slope matters with a leaky ReLU
                    layer = dataclasses.replace(layer, activation="leaky_relu")
                default = dataclasses.replace(layer, **{f.name: getattr(STACK[index], f.name)})
                out.append(pytest.param(index, layer, default, id=f"{kind}[{index}].{f.name}={value}"))
    return out


PROBES = _probes()


def _spec(index: int, layer):
    spec = H.replace(BASE, network=Network(input_shape=(28, 28, 1), layers=STACK[:index] + (layer,) + STACK[index + 1:]))
    validate(spec)
    return spec


def test_every_layer_field_is_probed_or_listed():
    probed = {p.id.split("=")[0].split(".", 1)[1] + "@" + p.id.split("[")[0] for p in PROBES}
    for kind, cls in LAYERS.items():
        for f in dataclasses.fields(cls):
            if f.name not in ("type", "name"):
                assert f.name in UNPROBED or f"{f.name}@{kind}" in probed, f"{kind}.{f.name}: neither probed nor listed"


@pytest.mark.parametrize("index, layer, default", PROBES)
def test_layer_field_reaches_both_frameworks(index: int, layer, default):
    spec, what = _spec(index, layer), f"network.layers[{index}] {layer}"
    H.register_config(f"layer-field-{index}-{layer}")
    sensitivity = _sensitivity(spec, _spec(index, default))
    assert sensitivity > 10, f"{what}: not a sensitive probe (the oracle moves {sensitivity:.3g} tolerances)"
    (x, y), = H.batches(spec.training.batch_size, 1, SEED + 1)
    H.check_forward_and_gradients(spec, SEED, x, y, what)
    H.run_trajectory(spec, SEED, STEPS, what, data_seed=SEED)
