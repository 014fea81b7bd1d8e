"""The defaults catalogue, layers, losses, initializers and layout (see
test_defaults.py for the optimizers): each framework's own default measured
against the oracle, and twinbench's mapping shown to restore parity."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import torch
import torch.nn.functional as F

import tf_impl.losses
import torch_impl.losses
from common import reference as ref
from common.reference import activations as A
from common.config import SpecError, load_spec
from parity_tests import catalogue
from parity_tests import harness as H
from parity_tests.test_defaults import BASE, BREAK, STEPS

BN_SPEC = H.replace(BASE, **{"network.batch_norm.mode": "after_activation"})
UNITS = BN_SPEC.network.hidden_units


def torch_bn(**kwargs):
    """A torch_impl model edit: its batch norm replaced by a plain nn.BatchNorm1d(**kwargs)
    carrying the same gamma, beta and moving statistics."""
    def edit(model):
        new = torch.nn.BatchNorm1d(UNITS, **kwargs).to(torch.float64)
        new.load_state_dict(model.bn.state_dict())
        model.bn = new
    return edit


def moving(weights: dict) -> dict:
    return {k: weights[k] for k in ("bn/moving_mean", "bn/moving_variance")}


def bn_run(spec, edit=None):
    w, data = H.canonical_weights(spec, 61), H.batches(64, STEPS, 6)
    return w, data, H.ref_run(spec, w, data), H.framework_run("torch", spec, w, data, edit=edit)


def mapped_ok(spec, w, data, expected, what):
    for fw in H.FRAMEWORKS:
        H.assert_close(H.framework_run(fw, spec, w, data), expected, "float64", "trajectory", f"{what}: {fw} mapped")
    return "within float64 tolerance (both frameworks)"


def test_bn_momentum():
    keras_m, torch_m = keras.layers.BatchNormalization().momentum, torch.nn.BatchNorm1d(2).momentum
    assert (keras_m, torch_m) == (0.99, 0.1)
    spec = H.replace(BN_SPEC, **{"network.batch_norm.running_variance": "unbiased"})  # torch's own, to isolate momentum
    out = {"keras default": keras_m, "torch default": torch_m}
    for label, kwargs in (("torch default momentum 0.1 (= Keras 0.9)", {"eps": 1e-3}),
                          ("torch momentum=0.99 copied literally (= Keras 0.01)", {"eps": 1e-3, "momentum": 0.99})):
        w, data, expected, got = bn_run(spec, torch_bn(**kwargs))
        out[f"{label} vs spec 0.99: moving statistics difference after {STEPS} steps"] = H.rel_diff(moving(got), moving(expected))
        assert H.rel_diff(moving(got), moving(expected)) > BREAK
    out["twinbench mapping (torch momentum = 1 - spec)"] = mapped_ok(spec, w, data, expected, "bn-momentum")
    catalogue.record("bn-momentum", **out)


def test_bn_epsilon():
    keras_eps, torch_eps = keras.layers.BatchNormalization().epsilon, torch.nn.BatchNorm1d(2).eps
    assert (keras_eps, torch_eps) == (1e-3, 1e-5)
    spec = H.replace(BN_SPEC, **{"network.batch_norm.running_variance": "unbiased"})
    w, (x, y) = H.canonical_weights(spec, 62), H.batches(64, 1, 8)[0]
    model = H.impl("torch").build_model(spec)
    H.impl("torch").set_weights(model, w)
    torch_bn(momentum=0.01)(model)  # default eps
    _, got = H.impl("torch").loss_and_gradients(model, spec, x, y)
    _, expected = ref.loss_and_gradients(w, spec, x, y)
    raw = H.rel_diff(got, expected)
    assert raw > BREAK
    wr, data, expected_run, _ = bn_run(spec)
    catalogue.record("bn-epsilon", keras_default=keras_eps, torch_default=torch_eps,
                     **{"torch default eps 1e-5 vs spec 1e-3: gradient difference on one batch of 64": raw,
                        "twinbench mapping": mapped_ok(spec, wr, data, expected_run, "bn-epsilon")})


def test_bn_running_variance():
    out = {}
    biased, unbiased = (H.replace(BN_SPEC, **{"network.batch_norm.running_variance": v}) for v in ("biased", "unbiased"))
    w, data, expected, got = bn_run(biased, torch_bn(eps=1e-3, momentum=0.01))
    out[f"torch nn.BatchNorm1d (unbiased) vs spec biased: moving variance difference after {STEPS} steps"] = \
        raw = H.rel_diff(got["bn/moving_variance"], expected["bn/moving_variance"])
    assert raw > BREAK
    out["twinbench mapping (biased: torch_impl BiasedBatchNorm1d)"] = mapped_ok(biased, w, data, expected, "biased")
    expected_u = H.ref_run(unbiased, w, data)
    keras_w = H.framework_run("tf", biased, w, data)  # plain keras BatchNormalization
    out[f"keras BatchNormalization (biased) vs spec unbiased: same, after {STEPS} steps"] = \
        raw = H.rel_diff(keras_w["bn/moving_variance"], expected_u["bn/moving_variance"])
    assert raw > BREAK
    out["twinbench mapping (unbiased: tf_impl UnbiasedBatchNormalization)"] = mapped_ok(unbiased, w, data, expected_u, "unbiased")
    catalogue.record("bn-running-variance", **out)


def test_bn_batch_size_1():
    x = np.random.default_rng(0).standard_normal((1, UNITS))
    layer = keras.layers.BatchNormalization(dtype="float64")
    y = layer(x, training=True).numpy()
    assert np.all(y == layer.beta.numpy())  # every unit normalized to beta, no error
    with pytest.raises(ValueError, match="Expected more than 1 value per channel") as err:
        torch.nn.BatchNorm1d(UNITS).double().train()(torch.as_tensor(x))
    spec = H.replace(BN_SPEC, **{"training.batch_size": 1})  # bypasses load_spec's validation
    for fw in H.FRAMEWORKS:
        with pytest.raises(SpecError, match=r"training\.batch_size"):
            H.impl(fw).build_model(spec)
    catalogue.record("bn-batch-size-1", **{
        "keras BatchNormalization, batch of 1, training=True: max |output - beta|": float(np.abs(y - layer.beta.numpy()).max()),
        "torch nn.BatchNorm1d, batch of 1, train(): raises": f"ValueError: {str(err.value)[:60]}...",
        "twinbench": "SpecError naming training.batch_size from both build_model calls"})


def _losses(spec, t, z):
    tt, zt = tf.constant(t), tf.constant(z)
    return {"ref": ref.per_example_loss(spec, z, A.output(spec.network, z), t.argmax(-1)),
            "tf": tf_impl.losses.per_example_loss(spec, tt, zt).numpy(),
            "torch": torch_impl.losses.per_example_loss(spec, torch.as_tensor(t), torch.as_tensor(z)).numpy()}


def test_cce_clipping():
    z = np.zeros((2, 10))
    z[0, 3] = 30.0  # true class 0: log softmax = -30, p ~ 9e-14 < 1e-7
    z[1, 0] = 2.0   # a well-classified example
    t = np.eye(10)[[0, 0]]
    p = scipy.special.softmax(z, axis=-1)
    keras_prob = keras.losses.categorical_crossentropy(t, p).numpy()  # from probabilities: clipped
    keras_act = keras.losses.categorical_crossentropy(t, keras.activations.softmax(tf.constant(z))).numpy()
    torch_logits = F.cross_entropy(torch.as_tensor(z), torch.as_tensor(t), reduction="none").numpy()
    zt = torch.tensor(z, requires_grad=True)
    torch_impl.losses.per_example_loss(H.replace(BASE, **{"loss.formula": "clipped"}), torch.as_tensor(t), zt).sum().backward()
    assert keras_prob[0] == pytest.approx(-np.log(1e-7), rel=1e-6) and torch_logits[0] == pytest.approx(30.0 + np.log1p(9 * np.exp(-30)))
    assert np.all(zt.grad.numpy()[0] == 0)  # clipped: the misclassified example stops learning
    for formula in ("clipped", "logits"):
        got = _losses(H.replace(BASE, **{"loss.formula": formula}), t, z)
        H.assert_close(got["tf"], got["ref"], "float64", "loss", f"cce {formula} tf")
        H.assert_close(got["torch"], got["ref"], "float64", "loss", f"cce {formula} torch")
    catalogue.record("cce-clipping", **{
        "confidently wrong example (true-class logit 30 below): keras categorical_crossentropy(t, p)": float(keras_prob[0]),
        "torch F.cross_entropy(z, t)": float(torch_logits[0]),
        "keras on a keras.activations.softmax output (its _keras_logits shortcut)": float(keras_act[0]),
        "gradient of the clipped loss for that example": "exactly 0",
        "twinbench mapping (clipped and logits)": "tf_impl and torch_impl = oracle within float64 tolerance"})


def test_bce_clipping():
    zr = np.array([[-200.0, -40.0]])  # two outputs, both with target 1
    pr, tr = 1 / (1 + np.exp(-zr)), np.ones_like(zr)
    keras_prob = [float(keras.losses.binary_crossentropy(tr[:, i:i + 1], pr[:, i:i + 1]).numpy()[0]) for i in range(2)]
    torch_bce = F.binary_cross_entropy(torch.as_tensor(pr), torch.as_tensor(tr), reduction="none").numpy()[0]
    torch_logits = F.binary_cross_entropy_with_logits(torch.as_tensor(zr), torch.as_tensor(tr), reduction="none").numpy()[0]
    assert torch_bce[0] == 100.0 and torch_logits[0] == pytest.approx(200.0)
    assert keras_prob == pytest.approx([-np.log(1e-7)] * 2, rel=1e-6)
    z, t = np.zeros((1, 10)), np.eye(10)[[0]]
    z[0, :3] = (-200.0, 40.0, -5.0)  # target 1 far below, target 0 far above, one moderate
    for formula in ("clipped", "logits"):
        spec = H.replace(BASE, **{"network.output_activation": "sigmoid", "loss.name": "binary_crossentropy",
                                  "loss.formula": formula})
        got = _losses(spec, t, z)
        H.assert_close(got["tf"], got["ref"], "float64", "loss", f"bce {formula} tf")
        H.assert_close(got["torch"], got["ref"], "float64", "loss", f"bce {formula} torch")
    catalogue.record("bce-clipping", **{
        "target 1, logit -200: keras binary_crossentropy(t, p)": keras_prob[0],
        "torch F.binary_cross_entropy(p, t) (BCELoss, log clamped at -100)": float(torch_bce[0]),
        "torch F.binary_cross_entropy_with_logits(z, t)": float(torch_logits[0]),
        "target 1, logit -40: keras / BCELoss / with logits": [keras_prob[1], float(torch_bce[1]), float(torch_logits[1])],
        "twinbench mapping (clipped and logits)": "tf_impl and torch_impl = oracle within float64 tolerance"})


def test_leaky_relu_slope():
    keras_slope, torch_slope = keras.layers.LeakyReLU().negative_slope, torch.nn.LeakyReLU().negative_slope
    assert (keras_slope, torch_slope) == (0.3, 0.01)
    spec = H.replace(BASE, **{"network.hidden_activation": "leaky_relu", "training.dtype": "float32"})
    w, (x, y) = H.canonical_weights(spec, 63), H.batches(64, 1, 9)[0]
    model = H.impl("tf").build_model(spec)
    H.impl("tf").set_weights(model, w)
    flatten, hidden, _, output = model.layers
    default = keras.Sequential([keras.Input((28, 28)), flatten, hidden, keras.layers.LeakyReLU(), output])
    with tf.GradientTape() as tape:
        loss = tf_impl.losses.SpecLoss(spec)(tf_impl.losses.one_hot(spec, y), default(x.astype("float32").reshape(-1, 28, 28)))
    grads = dict(zip(("hidden/kernel", "hidden/bias", "output/kernel", "output/bias"),
                     [g.numpy() for g in tape.gradient(loss, default.trainable_variables)]))
    _, expected = ref.loss_and_gradients(w, spec, x.astype("float32"), y)
    raw = H.rel_diff(grads, expected)
    assert raw > 1e3 * 1e-4  # far beyond the float32 gradient tolerance
    (xb, yb), = H.batches(64, 1, 9)
    H.check_forward_and_gradients(spec, 63, xb, yb, "leaky-relu float32 mapped")
    catalogue.record("leaky-relu-slope", keras_default=keras_slope, torch_default=torch_slope, spec_default=0.01, **{
        "keras.layers.LeakyReLU() (0.3) vs spec 0.01, float32: gradient difference on one batch": raw,
        "twinbench mapping, float32": "tf_impl, torch_impl = oracle within float32 tolerance",
        "twinbench mapping, float64": "tf_impl computes tf.where(x > 0, x, slope * x) in float64, since "
                                      "tf.nn.leaky_relu takes the slope as a float32 attribute "
                                      "(test_leaky_relu_float64_slope_is_exact)"})


def test_leaky_relu_float64_slope_is_exact():
    spec = H.replace(BASE, **{"network.hidden_activation": "leaky_relu"})
    (x, y), = H.batches(64, 1, 9)
    H.check_forward_and_gradients(spec, 63, x, y, "leaky-relu float64")


def test_he_normal_truncation():
    shape, s = (784, 2000), np.sqrt(2 / 784)
    k = np.asarray(keras.initializers.HeNormal(seed=3)(shape)) / s
    g = torch.Generator().manual_seed(3)
    t = torch.nn.init.kaiming_normal_(torch.empty(shape[::-1], dtype=torch.float64), generator=g).numpy() / s
    bound, kurt_trunc = 2 / float(scipy.stats.truncnorm(-2, 2).std()), float(scipy.stats.truncnorm(-2, 2).stats(moments="k"))
    stats = {n: (np.abs(v).max(), scipy.stats.kurtosis(v, axis=None), v.std()) for n, v in (("keras", k), ("torch", t))}
    assert stats["keras"][0] <= bound + 1e-5 < 4 < stats["torch"][0]
    assert abs(stats["keras"][1] - kurt_trunc) < 0.02 and abs(stats["torch"][1]) < 0.02
    out = {f"{n} max |w| / s, excess kurtosis, std / s": list(v) for n, v in stats.items()}
    out["truncnorm(-2, 2): bound 2 / 0.8796, excess kurtosis"] = [bound, kurt_trunc]
    for truncated, fw in ((True, "torch"), (False, "tf")):
        init = H.replace(BASE, **{"network.hidden_units": 2000}).network.hidden_kernel_init
        spec = H.replace(BASE, **{"network.hidden_units": 2000, "network.hidden_kernel_init": type(init)("he_normal", truncated=truncated)})
        v = H.impl(fw).get_weights(H.impl(fw).build_model(spec, seed=4))["hidden/kernel"] / s
        m, kt = np.abs(v).max(), scipy.stats.kurtosis(v, axis=None)
        assert (m <= bound + 1e-5 and abs(kt - kurt_trunc) < 0.02) if truncated else (m > 4 and abs(kt) < 0.02)
        out[f"twinbench {fw}_impl truncated={truncated}: max |w| / s, excess kurtosis"] = [m, kt]
    catalogue.record("he-normal-truncation", **out)


def test_kernel_layout():
    spec = H.with_dtype(load_spec("conf1"), "float64")
    w = H.canonical_weights(spec, 64)
    (x, _), = H.batches(16, 1, 10)
    expected = ref.forward(w, spec, x, training=False)["z2"]
    linear = torch.nn.Linear(784, 25, dtype=torch.float64)
    with pytest.raises(RuntimeError) as err:
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(w["hidden/kernel"]))
    model = H.impl("torch").build_model(spec)
    H.impl("torch").set_weights(model, w)
    with torch.no_grad():  # the silent mistake: reshape instead of transpose
        model.hidden.weight.copy_(torch.as_tensor(w["hidden/kernel"].reshape(25, 784)))
        model.output.weight.copy_(torch.as_tensor(w["output/kernel"].reshape(10, 25)))
    raw = H.rel_diff(H.logits("torch", model, spec, x), expected)
    assert raw > 0.1
    H.impl("torch").set_weights(model, w)
    H.assert_close(H.logits("torch", model, spec, x), expected, "float64", "forward", "kernel layout: torch_impl")
    keras_kernel = H.impl("tf").build_model(spec).get_layer("hidden").kernel.shape
    catalogue.record("kernel-layout", **{
        "keras Dense kernel shape / torch Linear weight shape": f"{tuple(keras_kernel)} / {tuple(linear.weight.shape)}",
        "copying the (784, 25) kernel into Linear.weight": f"RuntimeError: {str(err.value)[:70]}...",
        "reshaping it instead of transposing: logits difference": raw,
        "twinbench mapping (transpose in set_weights/get_weights)": "logits = oracle within float64 tolerance"})
