"""The layer-stack spec: the chapter presets as stacks (the old short form still loads, to the
same spec), the two flagship convnets' shapes and parameter counts, and every stack error
naming its layer."""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from common import spec as S
from common.config import (SpecError, load_spec, preset_names, replace, spec_from_dict, spec_to_dict, to_toml,
                           validate)
from common.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from common.reference.init import fans
from common.stack import layer_names, output_shape, walk, weight_shapes

OLD_FORM = Path(__file__).with_name("old_form")

# keras-io examples/vision/mnist_convnet.py and pytorch/examples mnist/main.py, as stacks
KERAS_CONVNET = S.Network(input_shape=(28, 28, 1), layers=(
    Conv2D(filters=32, activation="relu"), MaxPool2D(), Conv2D(filters=64, activation="relu"), MaxPool2D(),
    Flatten(), Dropout(rate=0.5), Dense(units=10, activation="softmax")))
TORCH_MNIST = S.Network(input_shape=(28, 28, 1), layers=(
    Conv2D(filters=32, activation="relu"), Conv2D(filters=64, activation="relu"), MaxPool2D(), Dropout(rate=0.25),
    Flatten(), Dense(units=128, activation="relu"), Dropout(rate=0.5), Dense(units=10, activation="log_softmax")))


def _bare(spec: S.Spec) -> S.Spec:
    return dataclasses.replace(spec, name="", description="")


@pytest.mark.parametrize("preset", [p for p in preset_names() if p.startswith("conf")])
def test_old_short_form_loads_to_the_same_stack(preset):
    """The presets before the layer stack (tests/core/old_form, a copy) load to the same spec."""
    old, new = load_spec(OLD_FORM / f"{preset}.toml"), load_spec(preset)
    assert _bare(old) == _bare(new) and old.description == new.description
    assert new.network.chapter_mlp is not None and old.network.layers == new.network.layers


def test_chapter_presets_are_the_stacks_the_short_form_builds():
    c5 = load_spec("conf5")
    assert [layer.name for layer in c5.network.layers] == ["hidden", "output"]
    assert c5.network.layers[0] == Dense(name="hidden", units=25, activation="relu",
                                         kernel_init=S.Initializer("he_normal", truncated=True))
    assert list(weight_shapes(c5.network)) == ["hidden/kernel", "hidden/bias", "output/kernel", "output/bias"]


@pytest.mark.parametrize("mode", ["before_activation", "after_activation"])
def test_batch_norm_short_form_is_a_stack_and_back(mode):
    spec = replace(load_spec("conf5"), **{"network.batch_norm.mode": mode, "network.hidden_activation": "leaky_relu",
                                          "network.leaky_relu_slope": 0.2})
    expected = ["hidden", "bn", "activation", "output"] if mode == "before_activation" else ["hidden", "bn", "output"]
    assert layer_names(spec.network) == expected
    assert spec.network.batch_norm.mode == mode and spec.network.leaky_relu_slope == 0.2
    assert spec.network.layers[0].activation == ("linear" if mode == "before_activation" else "leaky_relu")


def test_short_form_paths_apply_together_in_any_order():
    """A batch-norm field set before the mode that makes it exist is kept (applied to the short form at once)."""
    c5 = load_spec("conf5")
    a = replace(c5, **{"network.batch_norm.momentum": 0.5, "network.batch_norm.mode": "before_activation"})
    b = replace(c5, **{"network.batch_norm.mode": "before_activation", "network.batch_norm.momentum": 0.5})
    assert a == b and a.network.layers[1].momentum == 0.5


@pytest.mark.parametrize("spec", [load_spec("conf3"), dataclasses.replace(load_spec("conf5"), network=KERAS_CONVNET),
                                  load_spec("torch_mnist")],
                         ids=["conf3", "keras-convnet", "torch-mnist"])
def test_toml_and_dict_round_trip(spec, tmp_path):
    assert spec_from_dict(tomllib.loads(to_toml(spec))) == spec
    assert spec_from_dict(spec_to_dict(spec)) == spec
    path = tmp_path / "s.toml"
    path.write_text(to_toml(spec))
    assert load_spec(path) == spec


def test_keras_convnet_preset_is_the_example():
    """common/presets/keras_convnet.toml: the example's stack, Adam with Keras's defaults, batch 128,
    15 epochs, x / 255, the last tenth held out."""
    spec = load_spec("keras_convnet")
    assert spec.network == KERAS_CONVNET and spec.optimizer == S.Adam()
    t = spec.training
    assert (t.batch_size, t.epochs, t.input_divisor, t.standardize, t.evaluation, t.validation_split) == (
        128, 15, 255.0, False, "validation_split", 0.1)


def test_keras_convnet_shapes_and_parameter_count():
    """The Keras example's summary: 34,826 parameters; Flatten gives 1,600."""
    shapes = weight_shapes(KERAS_CONVNET)
    assert shapes["conv2d/kernel"] == (3, 3, 1, 32) and shapes["conv2d_1/kernel"] == (3, 3, 32, 64)
    assert [w.output_shape for w in walk(KERAS_CONVNET)] == [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64),
                                                             (1600,), (1600,), (10,)]
    assert sum(_size(s) for s in shapes.values()) == 34_826


def test_torch_mnist_shapes_and_parameter_count():
    """PyTorch's example: fc1 takes 9,216 inputs; 1,199,882 parameters."""
    shapes = weight_shapes(TORCH_MNIST)
    assert shapes["dense/kernel"] == (9216, 128) and output_shape(TORCH_MNIST) == (10,)
    assert sum(_size(s) for s in shapes.values()) == 1_199_882
    assert layer_names(TORCH_MNIST) == ["conv2d", "conv2d_1", "max_pool2d", "dropout", "flatten", "dense",
                                        "dropout_1", "dense_1"]


def test_torch_mnist_preset_is_the_example():
    """common/presets/torch_mnist.toml: the example's Net (its names), PyTorch's default initializers
    written out (kernels and biases within +-1 / sqrt(fan_in), fan_in counting the kernel area),
    log_softmax + NLL, Adadelta(lr=1.0) with PyTorch's rho and eps, StepLR(1, 0.7), batch 64,
    14 epochs, seed 1, Normalize((0.1307,), (0.3081,)), no shuffle (the CPU loader's), the test set."""
    spec = load_spec("torch_mnist")
    plain = [dataclasses.replace(layer, name="", **{k: getattr(S.Dense(), k) for k in ("kernel_init", "bias_init")
                                                    if hasattr(layer, k)}) for layer in spec.network.layers]
    assert tuple(plain) == TORCH_MNIST.layers and spec.network.input_shape == (28, 28, 1)
    assert layer_names(spec.network) == ["conv1", "conv2", "max_pool2d", "dropout1", "flatten", "fc1", "dropout2",
                                         "fc2"]
    for w in walk(spec.network):
        if w.weights:
            bound = 1 / fans(w.weights["kernel"])[0] ** 0.5
            assert w.layer.kernel_init == w.layer.bias_init == S.Initializer("uniform", -bound, bound), w.name
    assert spec.loss.name == "nll" and spec.optimizer == S.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6)
    t = spec.training
    assert (t.batch_size, t.epochs, t.seed, t.shuffle, t.input_divisor, t.standardize, t.input_mean, t.input_std,
            t.evaluation, t.schedule) == (64, 14, 1, False, 255.0, False, 0.1307, 0.3081, "test", S.Schedule(1, 0.7))


def test_log_softmax_goes_with_nll_only(tmp_path):
    base = 'base = "torch_mnist"\n'
    with pytest.raises(SpecError, match=r"loss.name: 'nll' takes the log-probabilities .* got loss.name = "
                                        r"'categorical_crossentropy' with network.output_activation = 'log_softmax'"):
        (tmp_path / "a.toml").write_text(base + '[loss]\nname = "categorical_crossentropy"\n')
        load_spec(tmp_path / "a.toml")
    net = S.Network(input_shape=(784,), layers=(Dense(units=12, activation="log_softmax"), TORCH_MNIST.layers[-1]))
    with pytest.raises(SpecError, match=r"network.layers\[0\] \(dense\): log_softmax is an output activation"):
        validate(replace(load_spec("torch_mnist"), network=net))


def test_same_padding_and_strides_shapes():
    net = S.Network(input_shape=(28, 28, 1), layers=(Conv2D(filters=4, padding="same", strides=(2, 2)),))
    assert output_shape(net) == (14, 14, 4)
    net = S.Network(input_shape=(7, 7, 1), layers=(Conv2D(filters=4, padding="same", kernel_size=(3, 3),
                                                          strides=(2, 2)), MaxPool2D(pool_size=(3, 3), strides=(1, 1))))
    assert output_shape(net) == (2, 2, 4)


def test_conv_fans_count_the_kernel_area():
    """Keras's compute_fans: a (3, 3, 32, 64) kernel has fan_in 288, fan_out 576."""
    assert fans((3, 3, 32, 64)) == (288, 576) and fans((784, 25)) == (784, 25) and fans((10,)) == (10, 10)


def test_a_convnet_is_not_the_chapter_mlp():
    with pytest.raises(ValueError, match="chapter.s MLP so far .* this network is conv2d -> max_pool2d"):
        KERAS_CONVNET.hidden_units
    assert KERAS_CONVNET.chapter_mlp is None and KERAS_CONVNET.output_activation == "softmax"


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


STACK_ERRORS = [
    ('[network]\ninput_shape = [28, 28, 1]\n[[network.layers]]\ntype = "dense"\nunits = 10\n',
     r"network.layers\[0\] \(dense\): needs a flat input, got shape \(28, 28, 1\); put a flatten layer before it"),
    ('[network]\ninput_shape = [784]\n[[network.layers]]\ntype = "conv2d"\n',
     r"network.layers\[0\] \(conv2d\): needs \(height, width, channels\) input"),
    ('[network]\ninput_shape = [2, 2, 1]\n[[network.layers]]\ntype = "conv2d"\n',
     r"network.layers\[0\] \(conv2d\): a 3x3 window does not fit its 2x2 input"),
    ('[network]\ninput_shape = [784]\n[[network.layers]]\ntype = "dense"\nname = "a"\nunits = 10\n'
     '[[network.layers]]\ntype = "dense"\nname = "a"\nunits = 10\n',
     r"network.layers\[1\].name: 'a' is used by an earlier layer"),
    ('[network]\ninput_shape = [784]\n[[network.layers]]\ntype = "dense"\nunits = 12\n',
     r"network.layers: the last layer must give MNIST's 10 outputs, got shape \(12,\)"),
    ('[network]\ninput_shape = [784]\n[[network.layers]]\ntype = "conv3d"\n',
     r"network.layers\[0\].type: expected one of \['activation', 'batch_norm', 'conv2d'"),
    ('[network]\ninput_shape = [784]\n[[network.layers]]\ntype = "conv2d"\nkernel_size = [3]\n',
     r"network.layers\[0\].kernel_size: expected 2 items, got 1"),
    ('[network]\ninput_shape = [28, 0, 1]\n', r"network.input_shape\[1\]: 0 out of range"),
    ('[network]\nhidden_units = 30\nlayers = []\n', r"network.layers: the layer-stack form cannot be mixed"),
    ('[network]\nhidden_unitz = 30\n', r"network.hidden_unitz: unknown key; allowed: hidden_units.*"
                                       r"or the layer-stack form: input_shape"),
]


@pytest.mark.parametrize("text,message", STACK_ERRORS, ids=[m[:40] for _, m in STACK_ERRORS])
def test_stack_errors_name_the_layer(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_short_form_keys_need_a_chapter_mlp_base(tmp_path):
    (tmp_path / "conv.toml").write_text(to_toml(dataclasses.replace(load_spec("conf5"), network=KERAS_CONVNET)))
    (tmp_path / "bad.toml").write_text('base = "conv.toml"\n[network]\nhidden_units = 30\n')
    with pytest.raises(SpecError, match="short-form keys .* need a base whose network is that MLP"):
        load_spec(tmp_path / "bad.toml")
    (tmp_path / "ok.toml").write_text('base = "conf5"\n[network]\nhidden_units = 30\n')
    assert load_spec(tmp_path / "ok.toml").network.hidden_units == 30
