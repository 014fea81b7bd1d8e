"""Shared machinery of the parity suite: frameworks, data, specs, the comparison
helper (which counts what it checks and reports the worst entry) and the
trajectory runner. Imported as `parity_tests.harness` everywhere, so its
counters are one per session."""
from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from typing import Iterable

import numpy as np
import pytest

from common import reference as ref
from common.canonical import BN_MOVING
from common.spec import Spec
from parity_tests.tolerances import KERAS_TRACKED_LOSS, Tol, tol, trajectory_quantities

# --- session counters (read by conftest's terminal summary) ---

STATS = {"arrays": 0, "elements": 0}
CONFIGS: set[str] = set()
WORST: dict[tuple[str, str], tuple[float, str]] = defaultdict(lambda: (0.0, ""))  # (dtype, quantity) -> ratio, where


def register_config(cid: str) -> None:
    CONFIGS.add(cid)


# --- frameworks ---

FRAMEWORKS = ("tf", "torch")


@functools.cache
def impl(fw: str):
    """tf_impl or torch_impl (imported lazily, after conftest pinned the numerics)."""
    if fw == "tf":
        import tf_impl
        return tf_impl
    import torch_impl
    return torch_impl


def params(specs: dict[str, Spec]) -> list:
    """pytest params (id -> spec)."""
    return [pytest.param(spec, id=cid) for cid, spec in specs.items()]


# --- specs ---

def replace(spec: Spec, **changes) -> Spec:
    """spec with dotted fields replaced: replace(s, **{"training.dtype": "float64"})."""
    for key, value in changes.items():
        spec = _replace_path(spec, key.split("."), value)
    return spec


def _replace_path(obj, path: list[str], value):
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    return dataclasses.replace(obj, **{path[0]: _replace_path(getattr(obj, path[0]), path[1:], value)})


def with_dtype(spec: Spec, dtype: str) -> Spec:
    return replace(spec, **{"training.dtype": dtype})


# --- data ---

@functools.cache
def data_pool(n: int = 4096) -> tuple[np.ndarray, np.ndarray, str]:
    """(x (n, 784) float64 holding float32-exact standardized MNIST pixels, y, source).

    The real MNIST or an error: no synthetic stand-in hides a missing dataset."""
    from common.data import load_mnist
    x, y, _, _ = load_mnist(standardize=True, dtype="float32")
    return x[:n].reshape(n, 784).astype(np.float64), y[:n].copy(), "mnist[:%d]" % n


@functools.cache
def gaussian_pool(n: int = 4096) -> tuple[np.ndarray, np.ndarray, str]:
    """Standardized Gaussian "pixels" (float32-exact) with MNIST's labels: no pixel is
    constant within a batch (see run_trajectory on batch norm before the activation)."""
    rng = np.random.default_rng(12345)
    return rng.standard_normal((n, 784)).astype(np.float32).astype(np.float64), data_pool(n)[1], "gaussian"


def batches(batch_size: int, steps: int, seed: int = 0, gaussian: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """`steps` disjoint batches drawn from the pool in a seeded order."""
    x, y, _ = gaussian_pool() if gaussian else data_pool()
    order = np.random.default_rng(seed).permutation(len(x))
    need = batch_size * steps
    order = np.resize(order, need)  # wraps around when more is needed than the pool holds
    return [(x[order[i:i + batch_size]], y[order[i:i + batch_size]]) for i in range(0, need, batch_size)]


# --- weights ---

def canonical_weights(spec: Spec, seed: int) -> dict[str, np.ndarray]:
    """ref.init_weights cast to the spec's dtype (what both frameworks get)."""
    return {k: v.astype(spec.training.dtype) for k, v in ref.init_weights(spec, seed).items()}


def build_pair(spec: Spec, weights: dict[str, np.ndarray]) -> dict:
    """Both frameworks' models with the same canonical weights loaded; checks the load is exact."""
    models = {}
    for fw in FRAMEWORKS:
        m = impl(fw).build_model(spec, seed=1)
        impl(fw).set_weights(m, weights)
        got = impl(fw).get_weights(m)
        assert_equal(got, weights, f"{fw} get_weights after set_weights")
        models[fw] = m
    return models


# --- comparisons ---

def assert_equal(actual: dict, expected: dict, what: str) -> None:
    """Bit-for-bit equality of two canonical dicts (names, shapes, dtypes, values)."""
    assert sorted(actual) == sorted(expected), f"{what}: names {sorted(actual)} != {sorted(expected)}"
    for name in expected:
        a, e = np.asarray(actual[name]), np.asarray(expected[name])
        assert a.shape == e.shape and a.dtype == e.dtype, f"{what}: {name} {a.dtype}{a.shape} != {e.dtype}{e.shape}"
        if not np.array_equal(a, e):
            i = np.unravel_index(np.argmax(a != e), a.shape) if a.ndim else ()
            raise AssertionError(f"{what}: {name}{list(i)}: {a[i]!r} != {e[i]!r}")
        STATS["arrays"] += 1
        STATS["elements"] += e.size


def assert_close(actual, expected, dtype: str, quantity: str, what: str,
                 scale: float | None = None, t: Tol | None = None) -> float:
    """Entry-wise |a - e| <= rtol |e| + atol * scale + floor for one array or a dict of
    arrays (scale: largest |e| in the set unless given). Returns the worst
    ratio |a - e| / bound; on failure names the worst entry and both values."""
    t = t or tol(dtype, quantity)
    if not isinstance(expected, dict):
        actual, expected = {"value": actual}, {"value": expected}
    assert sorted(actual) == sorted(expected), f"{what}: names {sorted(actual)} != {sorted(expected)}"
    exp = {k: np.asarray(v, dtype=np.float64) for k, v in expected.items()}
    if scale is None:
        scale = max((float(np.max(np.abs(v))) for v in exp.values() if v.size), default=0.0)
    worst, where = 0.0, ""
    for name, e in exp.items():
        a = np.asarray(actual[name], dtype=np.float64)
        assert a.shape == e.shape, f"{what}: {name} shape {a.shape} != {e.shape}"
        bound = t.rtol * np.abs(e) + t.atol * scale + t.floor
        err = np.abs(a - e)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(err == 0, 0.0, err / np.where(bound > 0, bound, np.inf))
        ratio = np.where(np.isfinite(a) & np.isfinite(e) | (a == e), ratio, np.inf)
        if ratio.size and float(np.max(ratio)) > worst:
            i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            worst = float(ratio[i])
            where = (f"{name}{list(map(int, i))}: actual {a[i]!r}, expected {e[i]!r}, |diff| {err[i]:.3g} "
                     f"> bound {bound[i]:.3g} (rtol {t.rtol:g}, atol {t.atol:g} x scale {scale:.3g}, floor {t.floor:g})")
        STATS["arrays"] += 1
        STATS["elements"] += e.size
    key = (dtype, quantity)
    if WORST[key][0] < worst <= 1.0:  # the headroom of passing comparisons
        WORST[key] = (worst, what)
    assert worst <= 1.0, f"{what} [{dtype} {quantity}]: worst entry {where}"
    return worst


def three_way(values: dict[str, object], dtype: str, quantity: str, what: str, scale: float | None = None) -> None:
    """tf vs ref, torch vs ref and tf vs torch, with the reference's scale."""
    r = values["ref"]
    if scale is None and isinstance(r, dict):
        scale = max((float(np.max(np.abs(v))) for v in r.values() if np.size(v)), default=0.0)
    elif scale is None:
        scale = float(np.max(np.abs(r)))
    assert_close(values["tf"], r, dtype, quantity, f"{what}: tf vs ref", scale)
    assert_close(values["torch"], r, dtype, quantity, f"{what}: torch vs ref", scale)
    assert_close(values["tf"], values["torch"], dtype, quantity, f"{what}: tf vs torch", scale)


# --- forward, gradients, trajectories ---

def logits(fw: str, model, spec: Spec, x: np.ndarray) -> np.ndarray:
    """The output pre-activation z2 in inference mode."""
    x = np.asarray(x, dtype=spec.training.dtype).reshape(-1, 28, 28)
    if fw == "tf":
        import tensorflow as tf
        with tf.device("/CPU:0"):
            return np.asarray(model(x, training=False))
    import torch
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy()


def check_reported_losses(losses: dict[str, float], dtype: str, what: str, quantity: str = "loss") -> None:
    """Losses as the frameworks report them: torch's in the run's dtype; Keras's
    come from its float32 Mean tracker even in float64 runs (KERAS_TRACKED_LOSS)."""
    assert_close(losses["torch"], losses["ref"], dtype, quantity, f"{what}: torch vs ref")
    assert_close(losses["tf"], losses["ref"], "float32", quantity, f"{what}: tf (float32 tracker) vs ref",
                 t=KERAS_TRACKED_LOSS if quantity == "loss" else None)


def check_forward_and_gradients(spec: Spec, seed: int, x: np.ndarray, y: np.ndarray, what: str) -> None:
    """Same canonical weights in tf, torch and the oracle: inference logits,
    inference loss, training loss and every gradient tensor agree."""
    dtype = spec.training.dtype
    w = canonical_weights(spec, seed)
    models = build_pair(spec, w)
    x = x.astype(dtype)
    z = {fw: logits(fw, models[fw], spec, x) for fw in FRAMEWORKS}
    z["ref"] = ref.forward(w, spec, x, training=False)["z2"]
    three_way(z, dtype, "forward", f"{what} logits")
    ev = {fw: impl(fw).evaluate(models[fw], spec, x, y) for fw in FRAMEWORKS}
    ev["ref"] = ref.evaluate(w, spec, x, y)
    check_reported_losses({k: v[0] for k, v in ev.items()}, dtype, f"{what} evaluate loss")
    assert ev["tf"][1] == ev["torch"][1] == ev["ref"][1], f"{what} evaluate accuracy {ev}"
    lg = {fw: impl(fw).loss_and_gradients(models[fw], spec, x, y) for fw in FRAMEWORKS}
    lg["ref"] = ref.loss_and_gradients(w, spec, x, y)
    three_way({k: v[0] for k, v in lg.items()}, dtype, "loss", f"{what} training loss")
    three_way({k: v[1] for k, v in lg.items()}, dtype, "gradients", f"{what} gradients")
    for fw in FRAMEWORKS:  # loss_and_gradients leaves the weights (moving statistics too) alone
        assert_equal(impl(fw).get_weights(models[fw]), w, f"{what} {fw} weights after loss_and_gradients")


def split(weights: dict) -> tuple[dict, dict]:
    """(trainable weights, batch-norm moving statistics)."""
    return ({k: v for k, v in weights.items() if k not in BN_MOVING},
            {k: v for k, v in weights.items() if k in BN_MOVING})


GAUGE = "hidden/bias"  # under batch norm before the activation: no effect on the loss


def run_trajectory(spec: Spec, seed: int, steps: int, what: str, data_seed: int = 0) -> None:
    """`steps` train_step calls on the same batches in tf, torch and the oracle;
    after every step compares weights, optimizer state and moving statistics.

    Batch norm before the activation makes the hidden bias a gauge direction:
    its gradient is exactly 0 in exact arithmetic, so each implementation's
    value is its own rounding noise, which Adagrad/RMSprop/Adam (outside-sqrt
    epsilon) amplify to steps of up to lr. That bias, its optimizer slots and
    the part of the moving mean it feeds are therefore not compared; the moving
    mean is compared without it: mm - B, B = m B + (1 - m) b, each from its own
    bias history (mm = m mm + (1 - m) mean(x W + b) is linear in b). The same
    holds for the kernel row of any pixel that is constant within a batch (the
    MNIST border), and later batches turn that noise into real divergence, so
    these runs use Gaussian pixels (gaussian_pool); test_trajectories shows the
    effect on MNIST."""
    dtype, bn = spec.training.dtype, spec.network.batch_norm
    gauge = bn.mode == "before_activation"
    w = canonical_weights(spec, seed)
    models = build_pair(spec, w)
    rw, rs = {k: v.astype(np.float64) for k, v in w.items()}, ref.init_state(spec, w)
    qw, qs, ql = trajectory_quantities(spec)
    prev = {fw: w for fw in (*FRAMEWORKS, "ref")}
    bias_part = {fw: np.zeros(spec.network.hidden_units) for fw in prev}
    for k, (x, y) in enumerate(batches(spec.training.batch_size, steps, data_seed, gaussian=gauge)):
        x = x.astype(dtype)
        losses = {fw: impl(fw).train_step(models[fw], spec, x, y) for fw in FRAMEWORKS}
        losses["ref"], rw, rs = ref.train_step(spec, rw, rs, x, y)
        at = f"{what} step {k + 1}"
        check_reported_losses(losses, dtype, f"{at} train_step loss", ql)
        ws = {**{fw: impl(fw).get_weights(models[fw]) for fw in FRAMEWORKS}, "ref": rw}
        parts = {fw: split(v) for fw, v in ws.items()}
        if gauge:
            for fw in ws:
                bias_part[fw] = bn.momentum * bias_part[fw] + (1 - bn.momentum) * prev[fw][GAUGE].astype(np.float64)
                parts[fw][1]["bn/moving_mean"] = parts[fw][1]["bn/moving_mean"] - bias_part[fw]
                del parts[fw][0][GAUGE]
        prev = ws
        three_way({fw: p[0] for fw, p in parts.items()}, dtype, qw, f"{at} weights")
        if parts["ref"][1]:
            three_way({fw: p[1] for fw, p in parts.items()}, dtype, qw, f"{at} BN moving statistics")
        if rs:
            st = {**{fw: impl(fw).get_optimizer_state(models[fw], spec) for fw in FRAMEWORKS}, "ref": rs}
            if gauge:
                st = {fw: {n: v for n, v in s.items() if not n.endswith("/" + GAUGE)} for fw, s in st.items()}
            three_way(st, dtype, qs, f"{at} optimizer state")


def spec_id(spec: Spec) -> str:
    """A short, readable id of a spec's distinguishing fields."""
    n, o, L = spec.network, spec.optimizer, spec.loss
    opt = o.name + {"sgd": lambda: ("-nesterov" if o.nesterov else "-mom" if o.momentum else ""),
                    "adagrad": lambda: "-" + o.epsilon_placement.split("_")[0],
                    "rmsprop": lambda: ("-centered" if o.centered else "") + "-" + o.epsilon_placement.split("_")[0],
                    "adam": lambda: "-" + o.epsilon_convention}[o.name]()
    loss = L.name if L.name == "mse" else {"binary_crossentropy": "bce", "categorical_crossentropy": "cce"}[L.name] + "-" + L.formula
    init = n.hidden_kernel_init.name + ("" if n.hidden_kernel_init.truncated or "normal" not in n.hidden_kernel_init.name else "-untrunc")
    init += "+cbias" if n.hidden_bias_init.name == "constant" else ""
    return "-".join([n.hidden_activation, n.output_activation, loss, "bn_" + n.batch_norm.mode.split("_")[0],
                     init, opt, f"b{spec.training.batch_size}", spec.training.dtype[-2:]])


# --- runs with a framework's own defaults (the defaults catalogue) ---

def ref_run(spec: Spec, w: dict, data: list, lr: list[float] | None = None) -> dict:
    """The oracle's weights after train_step over `data` (lr: per-step learning
    rate for SGD, Keras's velocity form)."""
    rw, rs = {k: np.asarray(v, np.float64) for k, v in w.items()}, ref.init_state(spec, w)
    for k, (x, y) in enumerate(data):
        s = spec if lr is None else replace(spec, **{"optimizer.learning_rate": lr[k]})
        _, rw, rs = ref.train_step(s, rw, rs, x, y)
    return rw


def framework_run(fw: str, spec: Spec, w: dict, data: list, optimizer=None, edit=None) -> dict:
    """Weights after train_step over `data` in one framework, built from the spec and
    then, optionally, edited (edit(model)) and/or given another optimizer:
    torch: optimizer(params) -> torch.optim.Optimizer; tf: a Keras optimizer."""
    model = impl(fw).build_model(spec, seed=1)
    impl(fw).set_weights(model, w)
    if edit is not None:
        edit(model)
    if fw == "torch" and (optimizer is not None or edit is not None):  # (edited layers: fresh parameters)
        from torch_impl.optimizers import make_optimizer
        model.optimizer = optimizer(list(model.parameters())) if optimizer else make_optimizer(spec, model)
    if fw == "tf" and optimizer is not None:
        from tf_impl.losses import SpecLoss
        model.compile(optimizer=optimizer, loss=SpecLoss(spec))
    for x, y in data:
        impl(fw).train_step(model, spec, x, y)
    return impl(fw).get_weights(model)


def update_diff(w0: dict, a: dict, b: dict, names: Iterable[str] | None = None) -> float:
    """max |(a - w0) - (b - w0)| / max |b - w0| over the tensors: how differently two
    runs moved the same starting weights."""
    names = list(names or b)
    num = max(float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64)))) for n in names)
    den = max(float(np.max(np.abs(np.asarray(b[n], np.float64) - np.asarray(w0[n], np.float64)))) for n in names)
    return num / den


def rel_diff(a: dict | np.ndarray, b: dict | np.ndarray) -> float:
    """max |a - b| / max |b| over one array or a dict of arrays."""
    if not isinstance(b, dict):
        a, b = {"v": a}, {"v": b}
    num = max(float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64)))) for n in b)
    return num / max(float(np.max(np.abs(np.asarray(b[n], np.float64)))) for n in b)
