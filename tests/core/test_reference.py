"""Tests of the float64 NumPy reference (common.reference) on its own.

The framework parity tests trust this module as the oracle, so it is checked
here against finite differences (gradients), hand-written scalar recurrences
(optimizers), independent numpy (batch norm) and known numbers (losses,
initializer statistics).
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import math

import numpy as np
import scipy.stats
import pytest

from common import reference as ref
from common.canonical import state_names, trainable_names, weight_names, weight_shapes
from common.config import SpecError, validate
from common.spec import SGD, Adagrad, Adam, ChapterMLP, Initializer, RMSprop, Spec, Training

H, N = 5, 6  # hidden units and batch size of the gradient check
BASE = Spec(network=ChapterMLP(hidden_units=H, leaky_relu_slope=0.2).network(), training=Training(batch_size=N))

# --- every combination of the design space that the gradient check covers ---

ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu")
OUTPUTS = ("sigmoid", "softmax", "linear", "log_softmax")
LOSSES = (("mse", "logits"),  # mse and nll ignore the formula: one variant each
          ("binary_crossentropy", "logits"), ("binary_crossentropy", "clipped"),
          ("categorical_crossentropy", "logits"), ("categorical_crossentropy", "clipped"), ("nll", "logits"))
BN_MODES = ("none", "before_activation", "after_activation")
SHORT = {"binary_crossentropy": "bce", "categorical_crossentropy": "cce", "mse": "mse", "nll": "nll",
         "none": "bn_none", "before_activation": "bn_before", "after_activation": "bn_after"}


def make_spec(act: str, out: str, loss: tuple[str, str], bn: str, base: Spec = BASE) -> Spec:
    """`base` with one combination of hidden/output activation, loss and batch-norm mode."""
    net = dataclasses.replace(base.network.mlp, hidden_activation=act, output_activation=out,
                              batch_norm=dataclasses.replace(base.network.batch_norm, mode=bn)).network()
    return dataclasses.replace(base, network=net,
                               loss=dataclasses.replace(base.loss, name=loss[0], formula=loss[1]))


def _combinations() -> tuple[list, list[str]]:
    """pytest params (seed, spec) of the combinations validate accepts; ids of the rest."""
    valid, rejected = [], []
    for act, out, loss, bn in itertools.product(ACTIVATIONS, OUTPUTS, LOSSES, BN_MODES):
        name = SHORT[loss[0]] + ("" if loss[0] in ("mse", "nll") else "_" + loss[1])
        cid = f"{act}-{out}-{name}-{SHORT[bn]}"
        spec = make_spec(act, out, loss, bn)
        try:
            validate(spec)
        except SpecError:
            rejected.append(cid)
            continue
        valid.append(pytest.param(len(valid), spec, id=cid))
    return valid, rejected


VALID, REJECTED = _combinations()


def test_combination_count():
    """4 x 4 x 6 x 3 = 288 combinations; validate rejects the 168 that pair a linear
    output with a cross-entropy (4 x 4 x 3 = 48), a logits cross-entropy with the other
    probability output (2 x 4 x 3 = 24), nll with another output than log_softmax (3 x 4 x 3 =
    36) or log_softmax with another loss (5 x 4 x 3 = 60); the other 120 are all checked."""
    assert (len(VALID), len(REJECTED)) == (120, 168)
    kinds = ("-linear-bce", "-linear-cce", "-sigmoid-cce_logits", "-softmax-bce_logits", "-nll", "-log_softmax-")
    assert all(any(k in r for k in kinds) for r in REJECTED)


# --- finite-difference gradient check ---

STEP = 2e-4
# 4th-order central stencil (-f(+2h) + 8 f(+h) - 8 f(-h) + f(-2h)) / 12h. Plain
# central differences at h ~ 1e-6 carry a roundoff of ~eps |L| / h ~ 1e-10..5e-9
# (median relative error ~2e-7 here), too coarse for 1e-7; this stencil at
# h = 2e-4 has truncation O(h^4) below 1e-14 and roundoff ~5e-12 (measured).
FLOOR = 1e-4
# err = |a - n| / max(|a| + |n|, FLOOR): relative for gradients above 1e-4; for
# smaller ones (e.g. hidden/bias under BN before the activation, analytically 0)
# an absolute bound RTOL * FLOOR = 1e-11, twice the stencil's measured roundoff.
RTOL = 1e-7
KINK_MARGIN = 2e-2  # min |activation input|; the stencil moves it by < 4 h |x| / std ~ 3e-3
PROB_MARGIN = 1e-3  # min distance of the clipped values from the clip bounds
KERNEL_SUBSET = np.random.default_rng(0).choice(784 * H, size=40, replace=False)


def random_problem(spec: Spec, seed: int, clip_eps: float | None = None):
    """Non-trivial weights, standardized inputs and labels, redrawn (deterministically)
    until every activation input is KINK_MARGIN from 0 and, for clipped losses,
    the clipped values are PROB_MARGIN from the clip bounds (0 and 1 unless clip_eps)."""
    bn = spec.network.batch_norm.mode != "none"
    for attempt in range(1000):
        rng = np.random.default_rng([seed, attempt])
        x, y = rng.standard_normal((N, 784)), rng.integers(0, 10, N)
        w = {"hidden/kernel": rng.standard_normal((784, H)) / 28, "hidden/bias": 0.3 * rng.standard_normal(H)}
        if bn:
            w |= {"bn/gamma": rng.uniform(0.5, 1.5, H), "bn/beta": 0.5 * rng.standard_normal(H),
                  "bn/moving_mean": 0.1 * rng.standard_normal(H), "bn/moving_variance": rng.uniform(0.5, 1.5, H)}
        w |= {"output/kernel": 0.8 * rng.standard_normal((H, 10)), "output/bias": 0.3 * rng.standard_normal(10)}
        if _far_from_kinks(spec, w, x, clip_eps):
            return w, x, y
    raise AssertionError("no kink-free problem found")


def _far_from_kinks(spec: Spec, w: dict, x: np.ndarray, clip_eps: float | None) -> bool:
    c = ref.forward(w, spec, x, training=True)
    if np.min(np.abs(c["act_in"])) < KINK_MARGIN:
        return False
    if spec.loss.name == "mse" or spec.loss.formula == "logits":
        return True
    bounds = [0.0, 1.0] if clip_eps is None else [clip_eps, 1.0 - clip_eps]
    v = c["p"] if spec.loss.name == "binary_crossentropy" else c["p"] / c["p"].sum(-1, keepdims=True)
    return all(np.min(np.abs(v - b)) > PROB_MARGIN for b in bounds)


def training_loss(spec: Spec, w: dict, x: np.ndarray, y: np.ndarray) -> float:
    c = ref.forward(w, spec, x, training=True)
    return ref.loss_value(spec, c["z2"], c["p"], y)


def numeric_gradient(spec: Spec, w: dict, x: np.ndarray, y: np.ndarray, name: str, idx: tuple) -> float:
    def at(delta: float) -> float:
        moved = w[name].copy()
        moved[idx] += delta
        return training_loss(spec, w | {name: moved}, x, y)
    return (-at(2 * STEP) + 8 * at(STEP) - 8 * at(-STEP) + at(-2 * STEP)) / (12 * STEP)


def checked_indices(name: str, shape: tuple[int, ...]) -> list[tuple]:
    """Every entry of the small tensors, a fixed random 40 of hidden/kernel."""
    if name == "hidden/kernel":
        return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in KERNEL_SUBSET]
    return list(np.ndindex(*shape))


def max_gradient_error(spec: Spec, w: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    loss, grads = ref.loss_and_gradients(w, spec, x, y)
    assert loss == training_loss(spec, w, x, y)
    assert sorted(grads) == sorted(trainable_names(spec))
    worst, where = 0.0, "nothing checked"
    for name, g in grads.items():
        assert g.shape == w[name].shape and g.dtype == np.float64
        for idx in checked_indices(name, g.shape):
            a, n = g[idx], numeric_gradient(spec, w, x, y, name, idx)
            err = abs(a - n) / max(abs(a) + abs(n), FLOOR)
            if err >= worst:
                worst, where = err, f"{name}{list(idx)}: analytic {a!r}, numeric {n!r}"
    return worst, where


@pytest.mark.parametrize("seed,spec", VALID)
def test_gradients_match_finite_differences(seed: int, spec: Spec):
    w, x, y = random_problem(spec, seed)
    err, where = max_gradient_error(spec, w, x, y)
    assert err < RTOL, where


@pytest.mark.parametrize("loss,out,eps", [("binary_crossentropy", "sigmoid", 0.2),
                                           ("categorical_crossentropy", "softmax", 0.05)])
def test_clipped_gradient_is_zero_outside_clip_range(loss: str, out: str, eps: float):
    """With a wide clip some of the values that enter the loss are clipped (for
    CCE: p / sum p of the true class); finite differences, taken away from the
    bounds, agree with the masked analytic gradient."""
    spec = make_spec("tanh", out, (loss, "clipped"), "none")
    spec = dataclasses.replace(spec, loss=dataclasses.replace(spec.loss, epsilon=eps))
    w, x, y = random_problem(spec, seed=999, clip_eps=eps)
    p = ref.forward(w, spec, x, training=True)["p"]
    v = p if loss == "binary_crossentropy" else (p / p.sum(-1, keepdims=True))[np.arange(N), y]
    inside = (v > eps) & (v < 1 - eps)
    assert inside.any() and (~inside).any()
    err, where = max_gradient_error(spec, w, x, y)
    assert err < RTOL, where


# --- losses with known numbers ---

def _known(out: str, loss: tuple[str, str], expected: float):
    name = SHORT[loss[0]] + ("" if loss[0] == "mse" else "_" + loss[1])
    return pytest.param(out, loss, expected, id=f"{out}-{name}")


@pytest.mark.parametrize("out,loss,expected", [
    _known("softmax", ("categorical_crossentropy", "logits"), math.log(10)),
    _known("softmax", ("categorical_crossentropy", "clipped"), math.log(10)),
    _known("sigmoid", ("categorical_crossentropy", "clipped"), math.log(10)),  # p / sum p = 0.1
    _known("sigmoid", ("binary_crossentropy", "logits"), math.log(2)),
    _known("sigmoid", ("binary_crossentropy", "clipped"), math.log(2)),
    _known("softmax", ("binary_crossentropy", "clipped"), -(math.log(0.1) + 9 * math.log(0.9)) / 10),
    _known("sigmoid", ("mse", "logits"), 0.25),
    _known("softmax", ("mse", "logits"), (0.81 + 9 * 0.01) / 10),
    _known("linear", ("mse", "logits"), 0.1),
    _known("log_softmax", ("nll", "logits"), math.log(10)),
])
def test_loss_known_numbers(out: str, loss: tuple[str, str], expected: float):
    """Zero output weights give z2 = 0: uniform outputs with known losses, both via
    loss_value and via evaluate on a network."""
    spec = make_spec("tanh", out, loss, "none")
    w = ref.init_weights(spec, 0)
    w["output/kernel"][:] = 0.0
    w["output/bias"][:] = 0.0
    x, y = np.random.default_rng(1).standard_normal((4, 784)), np.array([0, 3, 7, 9])
    c = ref.forward(w, spec, x, training=False)
    assert np.all(c["z2"] == 0.0)
    assert ref.loss_value(spec, c["z2"], c["p"], y) == pytest.approx(expected, rel=1e-14)
    assert ref.evaluate(w, spec, x, y)[0] == pytest.approx(expected, rel=1e-14)


def test_loss_clipping_numbers():
    """A saturated sigmoid (z = -50, p ~ 2e-22): the clipped BCE sees p = 1e-7, the
    logits form the exact softplus(50) = 50 for the true class; CCE clips p / sum p."""
    z2, y = np.full((1, 10), -50.0), np.array([2])
    p = np.full((1, 10), 1.0 / (1.0 + math.exp(50.0)))
    clipped = make_spec("tanh", "sigmoid", ("binary_crossentropy", "clipped"), "none")
    logits = make_spec("tanh", "sigmoid", ("binary_crossentropy", "logits"), "none")
    assert ref.loss_value(clipped, z2, p, y) == pytest.approx(
        -(math.log(1e-7) + 9 * math.log(1 - 1e-7)) / 10, rel=1e-12)
    assert ref.loss_value(logits, z2, p, y) == pytest.approx(
        (50 + 10 * math.log1p(math.exp(-50))) / 10, rel=1e-14)
    cce = make_spec("tanh", "softmax", ("categorical_crossentropy", "clipped"), "none")
    q = np.array([[1.0 - 9e-10] + [1e-10] * 9])
    assert ref.loss_value(cce, np.zeros_like(q), q, np.array([1])) == pytest.approx(-math.log(1e-7), rel=1e-12)
    assert ref.loss_value(cce, np.zeros_like(q), q, np.array([0])) == pytest.approx(-math.log(1 - 1e-7), rel=1e-6)


# --- optimizers: 3 steps against scalar recurrences written out here ---

OPTIMIZER_CASES = {
    "sgd_plain": SGD(learning_rate=0.1),
    "sgd_momentum": SGD(learning_rate=0.1, momentum=0.9),
    "sgd_nesterov": SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "adagrad_inside_sqrt": Adagrad(learning_rate=0.1, initial_accumulator=0.1, epsilon=1e-2),
    "adagrad_outside_sqrt": Adagrad(learning_rate=0.1, initial_accumulator=0.1, epsilon=1e-2,
                                    epsilon_placement="outside_sqrt"),
    **{f"rmsprop_{'centered' if c else 'plain'}_{p}": RMSprop(learning_rate=0.01, rho=0.8, epsilon=1e-2,
                                                              centered=c, epsilon_placement=p)
       for c in (False, True) for p in ("inside_sqrt", "outside_sqrt")},
    "adam_keras": Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-2),
    "adam_paper": Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-2, epsilon_convention="paper"),
}


def scalar_trajectory(opt, w: float, grads: list[float]) -> list[float]:
    """The weight after each step, one scalar at a time, straight from the formulas."""
    s1 = opt.initial_accumulator if opt.name == "adagrad" else 0.0  # velocity / acc / v / m
    s2 = 0.0  # rmsprop a / adam v
    out = []
    for t, g in enumerate(grads, start=1):
        if opt.name == "sgd":
            if opt.momentum == 0:
                w = w - opt.learning_rate * g
            else:
                s1 = opt.momentum * s1 - opt.learning_rate * g
                w = w + (opt.momentum * s1 - opt.learning_rate * g if opt.nesterov else s1)
        elif opt.name == "adagrad":
            s1 = s1 + g * g
            inside = opt.epsilon_placement == "inside_sqrt"
            w = w - opt.learning_rate * g / (math.sqrt(s1 + opt.epsilon) if inside else math.sqrt(s1) + opt.epsilon)
        elif opt.name == "rmsprop":
            s1 = opt.rho * s1 + (1 - opt.rho) * g * g
            s2 = opt.rho * s2 + (1 - opt.rho) * g
            d = s1 - s2 * s2 if opt.centered else s1
            inside = opt.epsilon_placement == "inside_sqrt"
            w = w - opt.learning_rate * g / (math.sqrt(d + opt.epsilon) if inside else math.sqrt(d) + opt.epsilon)
        else:
            b1, b2 = opt.beta_1, opt.beta_2
            s1, s2 = b1 * s1 + (1 - b1) * g, b2 * s2 + (1 - b2) * g * g
            if opt.epsilon_convention == "keras":
                w = w - opt.learning_rate * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * s1 / (math.sqrt(s2) + opt.epsilon)
            else:
                w = w - opt.learning_rate * (s1 / (1 - b1 ** t)) / (math.sqrt(s2 / (1 - b2 ** t)) + opt.epsilon)
        out.append(w)
    return out


def optimizer_spec(opt, h: int = 2, bn: str = "before_activation") -> Spec:
    return make_spec("tanh", "softmax", ("categorical_crossentropy", "logits"), bn,
                     base=dataclasses.replace(BASE, optimizer=opt, network=dataclasses.replace(
                         BASE.network.mlp, hidden_units=h).network()))


@pytest.mark.parametrize("opt", OPTIMIZER_CASES.values(), ids=OPTIMIZER_CASES.keys())
def test_optimizer_three_steps(opt):
    spec = optimizer_spec(opt)
    rng = np.random.default_rng(5)
    w0 = {k: rng.standard_normal(v) for k, v in weight_shapes(spec).items()}
    grads = [{k: rng.standard_normal(w0[k].shape) * 10.0 ** rng.integers(-2, 1) for k in trainable_names(spec)}
             for _ in range(3)]
    grads[1]["output/bias"][0] = 0.0
    state = ref.init_state(spec, w0)
    assert sorted(state) == sorted(state_names(spec))
    w, frozen_w, frozen_g = w0, copy.deepcopy(w0), copy.deepcopy(grads)
    trajectory = []
    for t, g in enumerate(grads, start=1):
        frozen_s = copy.deepcopy(state)
        w, new_state = ref.apply_gradients(spec, w, g, state)
        assert all(np.array_equal(state[k], frozen_s[k]) for k in state)  # inputs untouched
        state = new_state
        assert sorted(state) == sorted(state_names(spec))
        if opt.name == "adam":
            assert state["step"].shape == () and float(state["step"]) == t
        trajectory.append(w)
    assert all(np.array_equal(w0[k], frozen_w[k]) for k in w0)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(grads, frozen_g) for k in a)
    for name in weight_names(spec):
        for idx in np.ndindex(*w0[name].shape):
            if name in trainable_names(spec):
                expected = scalar_trajectory(opt, float(w0[name][idx]), [float(g[name][idx]) for g in grads])
            else:  # moving statistics are not the optimizer's business
                expected = [float(w0[name][idx])] * 3
            got = [float(wt[name][idx]) for wt in trajectory]
            assert got == pytest.approx(expected, rel=1e-13, abs=1e-15), (name, idx)


@pytest.mark.parametrize("opt,g,expected", [
    (SGD(learning_rate=0.1), 1.0, [0.9, 0.8, 0.7]),
    (SGD(learning_rate=0.1, momentum=0.9), 1.0, [0.9, 0.71, 0.439]),
    (SGD(learning_rate=0.1, momentum=0.9, nesterov=True), 1.0, [0.81, 0.539, 0.1951]),
    # acc = 0.2 + 0.04 = 0.24; sqrt(0.24 + 0.01) = 0.5
    (Adagrad(learning_rate=0.1, initial_accumulator=0.2, epsilon=0.01), 0.2, [0.96]),
    # acc = 0.12 + 0.04 = 0.16; sqrt(0.16) + 0.1 = 0.5
    (Adagrad(learning_rate=0.1, initial_accumulator=0.12, epsilon=0.1, epsilon_placement="outside_sqrt"), 0.2, [0.96]),
    # v = 0.25; sqrt(0.25 + 0.75) = 1, resp. sqrt(0.25) + 0.5 = 1
    (RMSprop(learning_rate=0.1, rho=0.75, epsilon=0.75), 1.0, [0.9]),
    (RMSprop(learning_rate=0.1, rho=0.75, epsilon=0.5, epsilon_placement="outside_sqrt"), 1.0, [0.9]),
    # v = 0.5, a = 0.5, v - a^2 = 0.25
    (RMSprop(learning_rate=0.1, rho=0.5, epsilon=0.75, centered=True), 1.0, [0.9]),
    (RMSprop(learning_rate=0.1, rho=0.5, epsilon=0.5, centered=True, epsilon_placement="outside_sqrt"), 1.0, [0.9]),
    # m = 0.5, v = 0.25: keras 0.1 * sqrt(0.25) / 0.5 * 0.5 / (0.5 + 0.5) = 0.05; paper 0.1 * 1 / (1 + 0.5)
    (Adam(learning_rate=0.1, beta_1=0.5, beta_2=0.75, epsilon=0.5), 1.0, [0.95]),
    (Adam(learning_rate=0.1, beta_1=0.5, beta_2=0.75, epsilon=0.5, epsilon_convention="paper"), 1.0, [1 - 1 / 15]),
], ids=["sgd_plain", "sgd_momentum", "sgd_nesterov", "adagrad_inside_sqrt", "adagrad_outside_sqrt",
        "rmsprop_inside_sqrt", "rmsprop_outside_sqrt", "rmsprop_centered_inside_sqrt",
        "rmsprop_centered_outside_sqrt", "adam_keras", "adam_paper"])
def test_optimizer_spot_numbers(opt, g: float, expected: list[float]):
    """Hand-computed numbers: every weight 1, every gradient g."""
    spec = optimizer_spec(opt, h=1, bn="none")
    w = {k: np.ones(s) for k, s in weight_shapes(spec).items()}
    state = ref.init_state(spec, w)
    for want in expected:
        w, state = ref.apply_gradients(spec, w, {k: np.full(w[k].shape, g) for k in trainable_names(spec)}, state)
        for k in w:
            np.testing.assert_allclose(w[k], want, rtol=1e-14)
    assert scalar_trajectory(opt, 1.0, [g] * len(expected)) == pytest.approx(expected, rel=1e-14)


# --- batch normalization: moving statistics and inference ---

def bn_problem(mode: str, running: str, n: int = 8):
    bn = dataclasses.replace(BASE.network.batch_norm, mode=mode, momentum=0.8, running_variance=running)
    spec = make_spec("tanh", "softmax", ("categorical_crossentropy", "logits"), mode)
    spec = dataclasses.replace(spec, network=dataclasses.replace(spec.network.mlp, hidden_units=4, batch_norm=bn).network(),
                               optimizer=SGD(learning_rate=0.1, momentum=0.5))
    rng = np.random.default_rng(11)
    w = {k: rng.standard_normal(s) * (0.05 if k == "hidden/kernel" else 1.0) for k, s in weight_shapes(spec).items()}
    w["bn/moving_variance"] = rng.uniform(0.5, 2.0, 4)
    x = rng.standard_normal((n, 28, 28)).astype(np.float32)
    return spec, w, x, rng.integers(0, 10, n)


def bn_input(spec: Spec, w: dict, x: np.ndarray) -> np.ndarray:
    """What the BN layer normalizes, computed here without the reference."""
    z1 = x.reshape(len(x), -1).astype(np.float64) @ w["hidden/kernel"] + w["hidden/bias"]
    return z1 if spec.network.batch_norm.mode == "before_activation" else np.tanh(z1)


@pytest.mark.parametrize("running", ["biased", "unbiased"])
@pytest.mark.parametrize("mode", ["before_activation", "after_activation"])
def test_bn_moving_statistics(mode: str, running: str):
    spec, w, x, y = bn_problem(mode, running)
    state = ref.init_state(spec, w)
    loss, w1, s1 = ref.train_step(spec, w, state, x, y)
    u = bn_input(spec, w, x)
    c = ref.forward(w, spec, x, training=True)
    np.testing.assert_allclose(c["bn_mean"], u.mean(0), rtol=1e-13)
    np.testing.assert_allclose(c["bn_var"], u.var(0), rtol=1e-12)
    var = u.var(0, ddof=0 if running == "biased" else 1)
    np.testing.assert_allclose(w1["bn/moving_mean"], 0.8 * w["bn/moving_mean"] + 0.2 * u.mean(0), rtol=1e-12)
    np.testing.assert_allclose(w1["bn/moving_variance"], 0.8 * w["bn/moving_variance"] + 0.2 * var, rtol=1e-12)
    # the trainable weights take exactly the optimizer step of the pre-update gradients
    l2, g = ref.loss_and_gradients(w, spec, x, y)
    w2, s2 = ref.apply_gradients(spec, w, g, state)
    assert loss == l2
    assert all(np.array_equal(w1[k], w2[k]) for k in trainable_names(spec))
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)


@pytest.mark.parametrize("mode", ["before_activation", "after_activation"])
def test_bn_inference_uses_moving_statistics(mode: str):
    spec, w, x, y = bn_problem(mode, "biased")
    u = bn_input(spec, w, x)
    eps = spec.network.batch_norm.epsilon
    v = w["bn/gamma"] * (u - w["bn/moving_mean"]) / np.sqrt(w["bn/moving_variance"] + eps) + w["bn/beta"]
    h = np.tanh(v) if mode == "before_activation" else v
    z2 = h @ w["output/kernel"] + w["output/bias"]
    p = np.exp(z2) / np.exp(z2).sum(-1, keepdims=True)
    np.testing.assert_allclose(ref.predict(w, spec, x), p, rtol=1e-12)
    one_by_one = np.concatenate([ref.predict(w, spec, x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(one_by_one, p, rtol=1e-12)
    assert "bn_mean" not in ref.forward(w, spec, x, training=False)
    assert not np.allclose(ref.forward(w, spec, x, training=True)["p"], p)
    loss, acc = ref.evaluate(w, spec, x, y)
    assert loss == pytest.approx(np.mean(-np.log(p[np.arange(len(y)), y])), rel=1e-12)
    assert acc == np.mean(p.argmax(-1) == y)


def test_bn_training_needs_two_examples():
    spec, w, x, y = bn_problem("before_activation", "unbiased")
    with pytest.raises(ValueError, match="at least 2"):
        ref.train_step(spec, w, ref.init_state(spec, w), x[:1], y[:1])


# --- initializers ---

WIDE = 100  # hidden units: hidden/kernel has 78,400 samples, output/kernel 1,000
TRUNC = float(scipy.stats.truncnorm(-2, 2).std())  # derived here, not copied from common.spec


def init_cases() -> dict[str, tuple[Initializer, callable]]:
    """name -> (initializer, (fan_in, fan_out) -> (mean, std, bound or None))."""
    def uni(limit):
        return lambda fi, fo: (0.0, limit(fi, fo) / math.sqrt(3), limit(fi, fo))
    def normal(s, truncated):
        return lambda fi, fo: (0.0, s(fi, fo), 2 * s(fi, fo) / TRUNC if truncated else None)
    glorot, he = (lambda fi, fo: math.sqrt(2 / (fi + fo))), (lambda fi, fo: math.sqrt(2 / fi))
    return {
        "uniform": (Initializer("uniform", -0.3, 0.2), lambda fi, fo: (-0.05, 0.5 / math.sqrt(12), None)),
        "glorot_uniform": (Initializer("glorot_uniform"), uni(lambda fi, fo: math.sqrt(6 / (fi + fo)))),
        "he_uniform": (Initializer("he_uniform"), uni(lambda fi, fo: math.sqrt(6 / fi))),
        "glorot_normal_truncated": (Initializer("glorot_normal"), normal(glorot, True)),
        "glorot_normal_plain": (Initializer("glorot_normal", truncated=False), normal(glorot, False)),
        "he_normal_truncated": (Initializer("he_normal"), normal(he, True)),
        "he_normal_plain": (Initializer("he_normal", truncated=False), normal(he, False)),
    }


def init_spec(kernel: Initializer, bias: Initializer = Initializer("zeros"), bn: str = "none") -> Spec:
    net = dataclasses.replace(BASE.network.mlp, hidden_units=WIDE, hidden_kernel_init=kernel, output_kernel_init=kernel,
                              hidden_bias_init=bias, output_bias_init=bias,
                              batch_norm=dataclasses.replace(BASE.network.batch_norm, mode=bn))
    return dataclasses.replace(BASE, network=net.network())


@pytest.mark.parametrize("case", init_cases().keys())
def test_initializer_statistics(case: str):
    """Sample mean and std within 5 standard errors (normal-theory se of the std,
    sd / sqrt(2n); uniform and truncated samples have lighter tails, so this is
    conservative); samples inside the bound; untruncated normals do cross it."""
    init, expect = init_cases()[case]
    w = ref.init_weights(init_spec(init), seed=3)
    for name in ("hidden/kernel", "output/kernel"):
        a = w[name]
        n, (fi, fo) = a.size, a.shape
        mean, std, bound = expect(fi, fo)
        assert abs(a.mean() - mean) < 5 * std / math.sqrt(n), name
        assert abs(a.std() - std) < 5 * std / math.sqrt(2 * n), name
        if init.name == "uniform":
            assert a.min() >= init.low and a.max() < init.high
        elif bound is not None:
            assert np.abs(a).max() <= bound, name
        if name == "hidden/kernel" and not init.truncated and init.name.endswith("normal"):
            assert np.abs(a).max() > 2 * std / TRUNC  # ~2.4% of the samples


def test_init_layout_order_and_constants():
    """Canonical names, shapes and float64; BN constants; one Generator drawing the
    weights in canonical order (BN and zeros/constant draw nothing)."""
    kernel = Initializer("uniform", -0.1, 0.1)
    spec = init_spec(kernel, Initializer("constant", value=0.25), bn="after_activation")
    w = ref.init_weights(spec, seed=42)
    assert list(w) == weight_names(spec)
    assert {k: v.shape for k, v in w.items()} == weight_shapes(spec)
    assert all(v.dtype == np.float64 for v in w.values())
    assert np.all(w["hidden/bias"] == 0.25) and np.all(w["output/bias"] == 0.25)
    for name, value in [("bn/gamma", 1), ("bn/beta", 0), ("bn/moving_mean", 0), ("bn/moving_variance", 1)]:
        assert np.all(w[name] == value)
    rng = np.random.default_rng(42)
    assert np.array_equal(w["hidden/kernel"], rng.uniform(-0.1, 0.1, (784, WIDE)))
    assert np.array_equal(w["output/kernel"], rng.uniform(-0.1, 0.1, (WIDE, 10)))
    again, other = ref.init_weights(spec, seed=42), ref.init_weights(spec, seed=43)
    assert all(np.array_equal(w[k], again[k]) for k in w)
    assert not np.array_equal(w["hidden/kernel"], other["hidden/kernel"])


def test_bias_fans_follow_keras():
    """A 1-D tensor has fan_in = fan_out = its length (keras compute_fans)."""
    w = ref.init_weights(init_spec(Initializer("zeros"), Initializer("glorot_uniform")), seed=0)
    assert np.abs(w["hidden/bias"]).max() <= math.sqrt(6 / (2 * WIDE))
    assert np.abs(w["hidden/bias"]).max() > 0.8 * math.sqrt(6 / (2 * WIDE))
    assert np.abs(w["output/bias"]).max() <= math.sqrt(6 / 20)
    w = ref.init_weights(init_spec(Initializer("zeros"), Initializer("he_normal")), seed=0)
    assert np.abs(w["hidden/bias"]).max() <= 2 * math.sqrt(2 / WIDE) / TRUNC


# --- the rest of the API ---

def api_problem(bn: str = "none"):
    spec = make_spec("relu", "softmax", ("categorical_crossentropy", "logits"), bn)
    spec = dataclasses.replace(spec, optimizer=Adam())
    rng = np.random.default_rng(21)
    return spec, ref.init_weights(spec, 1), rng.standard_normal((N, 28, 28)).astype(np.float32), rng.integers(0, 10, N)


@pytest.mark.parametrize("bn", ["none", "after_activation"])
def test_inputs_any_shape_and_float_dtype(bn: str):
    spec, w, x, y = api_problem(bn)
    flat64 = x.reshape(N, 784).astype(np.float64)
    l32, g32 = ref.loss_and_gradients(w, spec, x, y)
    l64, g64 = ref.loss_and_gradients(w, spec, flat64, y)
    assert l32 == l64 and all(np.array_equal(g32[k], g64[k]) for k in g32)
    w32 = {k: v.astype(np.float32) for k, v in w.items()}
    p = ref.predict(w32, spec, x.astype(np.float16))
    assert p.dtype == np.float64 and p.shape == (N, 10)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-15)
    assert isinstance(ref.evaluate(w, spec, x, y)[0], float)


def test_train_step_leaves_inputs_untouched_and_learns():
    spec, w, x, y = api_problem("before_activation")
    state = ref.init_state(spec, w)
    frozen_w, frozen_s = copy.deepcopy(w), copy.deepcopy(state)
    losses = []
    cur_w, cur_s = w, state
    for _ in range(20):
        loss, cur_w, cur_s = ref.train_step(spec, cur_w, cur_s, x, y)
        losses.append(loss)
    assert all(np.array_equal(w[k], frozen_w[k]) for k in w)
    assert all(np.array_equal(state[k], frozen_s[k]) for k in state)
    assert float(cur_s["step"]) == 20 and losses[-1] < losses[0]


def test_init_state_values():
    spec = optimizer_spec(Adagrad(initial_accumulator=0.3))
    w = {k: np.zeros(s) for k, s in weight_shapes(spec).items()}
    state = ref.init_state(spec, w)
    assert list(state) == state_names(spec)
    assert all(v.dtype == np.float64 and np.all(v == 0.3) for v in state.values())
    assert ref.init_state(optimizer_spec(SGD()), w) == {}
    adam = ref.init_state(optimizer_spec(Adam()), w)
    assert adam["step"].shape == () and float(adam["step"]) == 0.0
    assert all(np.all(v == 0) and v.shape == w[k.split("/", 1)[1]].shape for k, v in adam.items() if k != "step")


def test_evaluate_accuracy():
    spec, w, x, y = api_problem()
    w["output/kernel"][:] = 0.0
    w["output/bias"][:] = np.arange(10) == 3
    y = np.array([3, 3, 1, 0, 3, 9])
    loss, acc = ref.evaluate(w, spec, x, y)
    assert acc == 0.5
    p3 = math.e / (math.e + 9)
    assert loss == pytest.approx(-(3 * math.log(p3) + 3 * math.log((1 - p3) / 9)) / 6, rel=1e-14)
