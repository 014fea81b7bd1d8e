"""The defaults catalogue, optimizers: each test reads both frameworks' installed
defaults, trains with a framework's OWN default, shows that float64 parity with
the oracle breaks by a measured amount, and that twinbench's spec mapping
restores it. Numbers go to parity_tests.catalogue -> docs/differences.md.
(Layers, losses and initializers: test_defaults_layers.py.)"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import torch
from keras import ops

from common import reference as ref
from common.config import load_spec
from common.spec import SGD, Adadelta, Adagrad, Adam, RMSprop
from parity_tests import catalogue
from parity_tests import harness as H
from common.tolerances import DEFAULT_BREAK_FACTOR, tol

STEPS = 20
BASE = H.with_dtype(load_spec("conf5"), "float64")  # relu + he_normal / softmax + CCE, batch 64
BREAK = DEFAULT_BREAK_FACTOR * tol("float64", "trajectory").rtol  # a default must move the run by more


def setup(opt):
    spec = H.replace(BASE, optimizer=opt)
    w = H.canonical_weights(spec, 51)
    data = H.batches(64, STEPS, 5)
    return spec, w, data, H.ref_run(spec, w, data)


def torch_defaults(cls) -> dict:
    return cls([torch.nn.Parameter(torch.zeros(1))]).defaults


def f64(x) -> np.float64:
    return np.float64(x)


def mapped(spec, w, data, expected, what: str) -> float:
    """twinbench's own mapping in both frameworks: within the float64 trajectory tolerance."""
    for fw in H.FRAMEWORKS:
        H.assert_close(H.framework_run(fw, spec, w, data), expected, "float64", "trajectory", f"{what}: {fw} mapped")
    return H.update_diff(w, H.framework_run("torch", spec, w, data), expected)


def test_adam_epsilon():
    keras_eps, torch_eps = keras.optimizers.Adam().epsilon, torch_defaults(torch.optim.Adam)["eps"]
    assert (keras_eps, torch_eps) == (1e-7, 1e-8)
    spec, w, data, expected = setup(Adam(learning_rate=0.001, epsilon=1e-7, epsilon_convention="paper"))
    raw = H.update_diff(w, H.framework_run("torch", spec, w, data, optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=0.001)), expected)
    assert raw > BREAK
    catalogue.record("adam-epsilon", keras_default=keras_eps, torch_default=torch_eps,
                     **{f"torch.optim.Adam(lr) default eps vs spec eps 1e-7 (paper form), update difference after {STEPS} steps": raw,
                        "twinbench mapping, same": mapped(spec, w, data, expected, "adam-epsilon")})


def keras_adam():
    return keras.optimizers.Adam(learning_rate=lambda: f64(0.001), beta_1=f64(0.9), beta_2=f64(0.999), epsilon=f64(1e-7))


def test_adam_epsilon_placement():
    out = {}
    for conv, fw, make, label in (("keras", "torch", lambda: lambda m: torch.optim.Adam(m.parameters(), lr=0.001, eps=1e-7),
                                   "torch.optim.Adam (paper form)"),
                                  ("paper", "tf", lambda: lambda m: keras_adam(), "keras Adam (epsilon hat)")):
        spec, w, data, expected = setup(Adam(learning_rate=0.001, epsilon=1e-7, epsilon_convention=conv))
        first = H.update_diff(w, H.framework_run(fw, spec, w, data[:1], optimizer=make()), H.ref_run(spec, w, data[:1]))
        raw = H.update_diff(w, H.framework_run(fw, spec, w, data, optimizer=make()), expected)
        assert raw > BREAK
        out[f"{label} vs spec {conv} convention, update difference after 1 / {STEPS} steps"] = [first, raw]
        out[f"twinbench mapping ({conv}), same after {STEPS}"] = mapped(spec, w, data, expected, f"adam {conv}")
    catalogue.record("adam-epsilon-placement", **out)


def _placement(name, spec_opt, torch_raw, keras_raw, keras_name):
    out = {}
    for placement, fw, make in (("inside_sqrt", "torch", torch_raw), ("outside_sqrt", "tf", keras_raw)):
        spec, w, data, expected = setup(spec_opt(placement))
        raw = H.update_diff(w, H.framework_run(fw, spec, w, data, optimizer=make()), expected)
        assert raw > BREAK, (placement, raw)
        out[f"{'torch built-in (outside)' if fw == 'torch' else keras_name + ' (inside)'} vs spec {placement}, "
            f"update difference after {STEPS} steps"] = raw
        out[f"twinbench mapping ({placement}), same"] = mapped(spec, w, data, expected, f"{name} {placement}")
    catalogue.record(f"{name}-epsilon-placement", **out)


def test_rmsprop_epsilon_placement():
    _placement("rmsprop", lambda pl: RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7, epsilon_placement=pl),
               lambda: lambda m: torch.optim.RMSprop(m.parameters(), lr=0.001, alpha=0.9, eps=1e-7),
               lambda: lambda m: keras.optimizers.RMSprop(learning_rate=lambda: f64(0.001), rho=f64(0.9),
                                                          epsilon=f64(1e-7)),
               "keras RMSprop")


def test_adagrad_epsilon_placement():
    assert (keras.optimizers.Adagrad().epsilon, torch_defaults(torch.optim.Adagrad)["eps"]) == (1e-7, 1e-10)
    _placement("adagrad", lambda pl: Adagrad(learning_rate=0.01, initial_accumulator=0.1, epsilon=1e-7, epsilon_placement=pl),
               lambda: lambda m: torch.optim.Adagrad(m.parameters(), lr=0.01, initial_accumulator_value=0.1, eps=1e-7),
               lambda: lambda m: keras.optimizers.Adagrad(learning_rate=lambda: f64(0.01),
                                                          initial_accumulator_value=f64(0.1), epsilon=f64(1e-7)),
               "keras Adagrad")


def test_adagrad_initial_accumulator():
    keras_acc = keras.optimizers.Adagrad().initial_accumulator_value
    torch_acc = torch_defaults(torch.optim.Adagrad)["initial_accumulator_value"]
    assert (keras_acc, torch_acc) == (0.1, 0)
    spec, w, data, expected = setup(Adagrad(learning_rate=0.01, initial_accumulator=0.1, epsilon=1e-7,
                                            epsilon_placement="outside_sqrt"))
    raw = H.update_diff(w, H.framework_run("torch", spec, w, data,
                                           optimizer=lambda m: torch.optim.Adagrad(m.parameters(), lr=0.01, eps=1e-7)), expected)
    assert raw > BREAK
    catalogue.record("adagrad-initial-accumulator", keras_default=keras_acc, torch_default=torch_acc,
                     **{f"torch.optim.Adagrad(lr, eps) default accumulator 0 vs spec 0.1, update difference after {STEPS} steps": raw,
                        "twinbench mapping, same": mapped(spec, w, data, expected, "adagrad-initial-accumulator")})


def test_rmsprop_rho():
    keras_rho, torch_alpha = keras.optimizers.RMSprop().rho, torch_defaults(torch.optim.RMSprop)["alpha"]
    assert (keras_rho, torch_alpha) == (0.9, 0.99)
    spec, w, data, expected = setup(RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7, epsilon_placement="outside_sqrt"))
    raw = H.update_diff(w, H.framework_run("torch", spec, w, data,
                                           optimizer=lambda m: torch.optim.RMSprop(m.parameters(), lr=0.001, eps=1e-7)), expected)
    assert raw > BREAK
    catalogue.record("rmsprop-rho", keras_default=keras_rho, torch_default=torch_alpha,
                     **{f"torch.optim.RMSprop(lr, eps) default alpha 0.99 vs spec rho 0.9, update difference after {STEPS} steps": raw,
                        "twinbench mapping, same": mapped(spec, w, data, expected, "rmsprop-rho")})


def test_adadelta_defaults():
    k, t = keras.optimizers.Adadelta(), torch_defaults(torch.optim.Adadelta)
    assert (round(float(k.learning_rate), 9), k.rho, k.epsilon) == (0.001, 0.95, 1e-7)  # TF: a float32 variable
    assert (t["lr"], t["rho"], t["eps"]) == (1.0, 0.9, 1e-6)
    spec, w, data, expected = setup(Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-7))
    raw = H.update_diff(w, H.framework_run("torch", spec, w, data,
                                           optimizer=lambda m: torch.optim.Adadelta(m.parameters(), lr=1.0)), expected)
    assert raw > BREAK
    catalogue.record("adadelta-defaults", keras_default=(0.95, 1e-7), torch_default=(0.9, 1e-6),
                     **{f"torch.optim.Adadelta(lr) default rho 0.9, eps 1e-6 vs spec 0.95, 1e-7, update difference "
                        f"after {STEPS} steps": raw,
                        "twinbench mapping, same": mapped(spec, w, data, expected, "adadelta-defaults")})


class _StepDown(keras.optimizers.schedules.LearningRateSchedule):
    """lr 0.01 for the first `at` steps, then 0.001 (float64, evaluated in the graph)."""

    def __init__(self, at: int):
        self.at = at

    def __call__(self, step):
        return tf.where(step < self.at, tf.constant(0.01, tf.float64), tf.constant(0.001, tf.float64))


def test_sgd_momentum_lr_change():
    """Keras v = m v - lr g; w += v   vs   torch b = m b + g; w -= lr b, with lr
    0.01 for 10 steps then 0.001: identical before the change, different after;
    each framework follows its own formula (oracle: Keras form, numpy: torch form)."""
    spec, w, data, _ = setup(SGD(learning_rate=0.01, momentum=0.9))
    at, lrs = STEPS // 2, [0.01] * (STEPS // 2) + [0.001] * (STEPS // 2)
    keras_form = H.ref_run(spec, w, data, lr=lrs)
    rw, buf = {k: v.astype(np.float64) for k, v in w.items()}, None
    for (x, y), lr in zip(data, lrs):  # torch's buffer form, written out
        _, g = ref.loss_and_gradients(rw, spec, x, y)
        buf = g if buf is None else {n: 0.9 * buf[n] + g[n] for n in g}
        rw = {n: v - lr * buf[n] if n in buf else v for n, v in rw.items()}
    keras_w = H.framework_run("tf", spec, w, data,
                              optimizer=lambda m: keras.optimizers.SGD(learning_rate=_StepDown(at), momentum=f64(0.9)))

    def torch_run(steps):  # torch's own SGD, its learning rate changed between steps
        model = H.impl("torch").build_model(spec, seed=1)
        H.impl("torch").set_weights(model, w)
        model.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for k, (x, y) in enumerate(data[:steps]):
            for group in model.optimizer.param_groups:
                group["lr"] = lrs[k]
            H.impl("torch").train_step(model, spec, x, y)
        return H.impl("torch").get_weights(model)
    H.assert_close(keras_w, keras_form, "float64", "trajectory", "keras SGD with lr change vs velocity form")
    H.assert_close(torch_run(STEPS), rw, "float64", "trajectory", "torch SGD with lr change vs buffer form")
    before = H.update_diff(w, H.framework_run("tf", spec, w, data[:at]), torch_run(at))
    after = H.update_diff(w, keras_w, torch_run(STEPS))
    assert before < 1e-12 and after > BREAK
    catalogue.record("sgd-momentum-lr-change", **{
        f"keras vs torch update difference after {at} steps at lr 0.01 (constant)": before,
        f"after {at} more steps at lr 0.001": after,
        "each framework vs its own formula (oracle velocity form / numpy buffer form)": "within float64 tolerance"})


def test_keras_float32_hyperparameters():
    """In a float64 run Keras keeps a Python-float learning rate in a float32 variable
    and casts Python-float hyperparameters through float32."""
    lr_var = keras.optimizers.SGD(learning_rate=0.001).learning_rate
    cast = float(ops.cast(0.9, "float64"))
    assert lr_var.dtype == "float32" and cast == float(np.float32(0.9)) != 0.9
    out = {"keras SGD(learning_rate=0.001).learning_rate dtype": str(lr_var.dtype),
           "ops.cast(0.9, 'float64')": repr(cast)}
    for opt, raw_opt in ((SGD(learning_rate=0.01, momentum=0.9), keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)),
                         (Adam(learning_rate=0.001), keras.optimizers.Adam(learning_rate=0.001))):  # all Python floats
        spec, w, data, expected = setup(opt)
        raw = H.update_diff(w, H.framework_run("tf", spec, w, data, optimizer=lambda m, o=raw_opt: o), expected)
        assert raw > BREAK
        out[f"keras {opt.name} with Python-float hyperparameters, float64 run, update difference after {STEPS} steps"] = raw
        out[f"twinbench mapping ({opt.name}: np.float64 scalars), same"] = mapped(spec, w, data, expected, f"float64 {opt.name}")
    x = tf.constant([-1.0], tf.float64)
    slope = -float(keras.layers.LeakyReLU(negative_slope=0.01, dtype="float64")(x)[0])
    out["keras.layers.LeakyReLU(0.01) in float64 multiplies by"] = repr(slope)  # see test_defaults_layers
    catalogue.record("keras-float32-hyperparameters", **out)
