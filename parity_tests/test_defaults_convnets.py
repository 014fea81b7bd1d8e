"""The defaults catalogue, the convnets' differences (issue 31): the layout of a conv kernel and
the flatten order feeding a dense layer, the conv layers' default initializers, the unit a
learning-rate schedule counts, and log_softmax + NLL against softmax + cross-entropy. Each is
measured on the torch_mnist preset or its pieces, and twinbench's mapping shown to hold."""
from __future__ import annotations

import keras
import numpy as np
import torch
import torch.nn.functional as F

from common import reference as ref
from common.config import load_spec
from common.spec import Adadelta
from parity_tests import catalogue
from parity_tests import harness as H
from parity_tests.test_defaults import BASE, BREAK, STEPS, f64

TORCH_MNIST = H.with_dtype(load_spec("torch_mnist"), "float64")


def test_conv_layout_and_flatten_order():
    """Keras's canonical weights loaded into PyTorch's Net: the conv kernels need HWIO -> OIHW, and
    fc1's 9,216 rows the NCHW flatten order; a port that only transposes fc1 gets other logits."""
    spec, w = TORCH_MNIST, H.canonical_weights(TORCH_MNIST, 65)
    (x, _), = H.batches(16, 1, 11)
    expected = ref.forward(w, spec, x, training=False)["z2"]
    model = H.impl("torch").build_model(spec)
    H.impl("torch").set_weights(model, w)
    H.assert_close(H.logits("torch", model, spec, x), expected, "float64", "forward", "conv layout: torch_impl")
    with torch.no_grad():  # the usual port: fc1 transposed, its rows left in Keras's NHWC order
        model.fc1.weight.copy_(torch.as_tensor(w["fc1/kernel"].T))
    raw = H.rel_diff(H.logits("torch", model, spec, x), expected)
    assert raw > 0.01
    keras_conv = keras.layers.Conv2D(64, 3)
    keras_conv.build((None, 26, 26, 32))
    catalogue.record("conv-layout", **{
        "keras Conv2D kernel / torch Conv2d weight shape": f"{tuple(keras_conv.kernel.shape)} / "
                                                          f"{tuple(torch.nn.Conv2d(32, 64, 3).weight.shape)}",
        "fc1 transposed but its rows left in NHWC order: logits difference": raw,
        "twinbench mapping (torch_impl/stack.py to_canonical/from_canonical)": "logits = oracle within float64 tolerance"})


def test_conv_initializer_defaults():
    """Each framework's own conv1 and fc1 (torch_mnist's shapes): the spread of the kernels and whether
    the biases start at zero."""
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)  # the draws (288 conv1 weights) are seeded: the catalogue's numbers repeat
    out = {}
    for name, shape_in, keras_layer, torch_layer in (
            ("conv1", (None, 28, 28, 1), keras.layers.Conv2D(32, 3), torch.nn.Conv2d(1, 32, 3)),
            ("fc1", (None, 9216), keras.layers.Dense(128), torch.nn.Linear(9216, 128))):
        keras_layer.build(shape_in)
        k_kernel, k_bias = np.asarray(keras_layer.kernel), np.asarray(keras_layer.bias)
        t_kernel, t_bias = torch_layer.weight.detach().numpy(), torch_layer.bias.detach().numpy()
        assert not k_bias.any() and np.abs(t_bias).max() > 0
        ratio = float(t_kernel.std() / k_kernel.std())
        assert abs(ratio - 1) > 0.2  # the defaults differ
        out[f"{name}: keras glorot_uniform std, torch kaiming_uniform(a=sqrt 5) std, ratio"] = [
            float(k_kernel.std()), float(t_kernel.std()), ratio]
        out[f"{name}: keras bias max |b|, torch bias max |b|"] = [float(np.abs(k_bias).max()),
                                                                  float(np.abs(t_bias).max())]
    catalogue.record("conv-init-defaults", **out)


def test_schedule_counts_steps_or_epochs():
    """StepLR(step_size=1, gamma) decays once an epoch; Keras's ExponentialDecay counts steps: ported
    with decay_steps=1 it decays every step. Epochs of 5 steps here, 20 steps in all."""
    spec = H.replace(BASE, optimizer=Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6),
                     **{"training.schedule.gamma": 0.7})
    w, data, per_epoch = H.canonical_weights(spec, 66), H.batches(64, STEPS, 7), 5
    lrs = [spec.training.schedule.rate(1.0, k // per_epoch) for k in range(STEPS)]
    expected = H.ref_run(spec, w, data, lr=lrs)

    def keras_run(decay_steps: int) -> dict:
        schedule = keras.optimizers.schedules.ExponentialDecay(f64(1.0), decay_steps, f64(0.7), staircase=True)
        return H.framework_run("tf", spec, w, data, optimizer=lambda m: keras.optimizers.Adadelta(
            learning_rate=schedule, rho=0.9, epsilon=1e-6))
    H.assert_close(keras_run(per_epoch), expected, "float64", "trajectory", "ExponentialDecay(decay_steps=steps per epoch)")
    raw = H.update_diff(w, keras_run(1), expected)
    assert raw > BREAK
    catalogue.record("lr-schedule-unit", **{
        f"ExponentialDecay(decay_steps=1, staircase) vs the rate x0.7 each epoch, update difference after {STEPS} steps "
        f"({per_epoch} per epoch)": raw,
        "learning rate of the last step: decay_steps=1, per epoch": [0.7 ** (STEPS - 1), lrs[-1]],
        "twinbench mapping (decay_steps = step_epochs x steps per epoch)": "within float64 tolerance"})


def test_nll_of_log_softmax_is_cross_entropy():
    """PyTorch's example ends in log_softmax and F.nll_loss; Keras's in softmax and categorical
    cross-entropy: the same function of the logits, to rounding."""
    spec = TORCH_MNIST
    w = H.canonical_weights(spec, 67)
    (x, y), = H.batches(64, 1, 12)
    z = torch.as_tensor(ref.forward(w, spec, x, training=False)["z2"])
    t = torch.as_tensor(y)
    nll, ce = F.nll_loss(F.log_softmax(z, -1), t), F.cross_entropy(z, t)
    keras_ce = keras.losses.CategoricalCrossentropy(from_logits=True, dtype="float64")(np.eye(10)[y], z.numpy())
    diffs = [abs(float(nll) - float(ce)) / float(ce), abs(float(nll) - float(keras_ce)) / float(ce)]
    assert max(diffs) < 1e-12
    catalogue.record("nll-log-softmax", **{
        "F.nll_loss(F.log_softmax(z)) vs F.cross_entropy(z), vs Keras CategoricalCrossentropy(from_logits)": diffs})
