"""Weight initialization in float64 from a numpy Generator (common.spec.Initializer).

np.random.default_rng(seed) draws every canonical weight in canonical order
(common.canonical.weight_names); zeros/constant and the batch-norm weights draw
nothing. Fans follow keras/src/initializers/random_initializers.py compute_fans:
a kernel (in, out) has fan_in = in, fan_out = out; a conv kernel (kh, kw, in, out)
fan_in = kh kw in, fan_out = kh kw out; a 1-D tensor (a bias) has fan_in =
fan_out = its length.
"""
from __future__ import annotations

import numpy as np

from common.canonical import weight_names, weight_shapes
from common.stack import layer_names
from common.spec import TRUNCATION_STDDEV, Initializer, Spec

BN_INIT = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}  # batch norm's, by weight


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel (..., in, out), whose leading axes (a conv kernel's area)
    multiply both, or of a 1-D tensor (n, n)."""
    if len(shape) == 1:
        return shape[0], shape[0]
    area = int(np.prod(shape[:-2]))
    return shape[-2] * area, shape[-1] * area


def truncated_normal(rng: np.random.Generator, stddev: float, shape: tuple[int, ...]) -> np.ndarray:
    """N(0, stddev) with samples outside [-2 stddev, 2 stddev] redrawn."""
    out = rng.normal(0.0, stddev, size=shape)
    bad = np.abs(out) > 2.0 * stddev
    while np.any(bad):
        out[bad] = rng.normal(0.0, stddev, size=int(np.sum(bad)))
        bad = np.abs(out) > 2.0 * stddev
    return out


def _normal(rng: np.random.Generator, s: float, shape: tuple[int, ...], truncated: bool) -> np.ndarray:
    if truncated:
        return truncated_normal(rng, s / TRUNCATION_STDDEV, shape)
    return rng.normal(0.0, s, size=shape)


def draw(init: Initializer, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """One tensor of the given shape drawn as `init` says."""
    if init.name == "zeros":
        return np.zeros(shape)
    if init.name == "constant":
        return np.full(shape, float(init.value))
    if init.name == "uniform":
        return rng.uniform(init.low, init.high, size=shape)
    fan_in, fan_out = fans(shape)
    if init.name == "glorot_uniform":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    if init.name == "he_uniform":
        limit = np.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape)
    if init.name == "glorot_normal":
        return _normal(rng, np.sqrt(2.0 / (fan_in + fan_out)), shape, init.truncated)
    if init.name == "he_normal":
        return _normal(rng, np.sqrt(2.0 / fan_in), shape, init.truncated)
    raise ValueError(f"initializer: unknown {init.name!r}")


def initializer_of(spec: Spec, name: str) -> Initializer | float:
    """The spec's initializer of a canonical weight `<layer>/<weight>` (a constant for batch norm)."""
    layer, weight = name.rsplit("/", 1)
    if weight in BN_INIT:
        return BN_INIT[weight]
    found = dict(zip(layer_names(spec.network), spec.network.layers))[layer]
    return getattr(found, f"{weight}_init")


def init_weights(spec: Spec, seed: int) -> dict[str, np.ndarray]:
    """Fresh float64 weights with canonical names and shapes."""
    rng = np.random.default_rng(seed)
    shapes = weight_shapes(spec)
    weights = {}
    for name in weight_names(spec):
        init = initializer_of(spec, name)
        if isinstance(init, Initializer):
            weights[name] = draw(init, shapes[name], rng).astype(np.float64)
        else:
            weights[name] = np.full(shapes[name], init, dtype=np.float64)
    return weights


def start_weights(spec: Spec, seed: int) -> dict[str, np.ndarray]:
    """The canonical initial weights of a run: init_weights(spec, seed) cast to the spec's
    dtype. Both frameworks start every compared or benchmarked run from these."""
    return {k: v.astype(spec.training.dtype) for k, v in init_weights(spec, seed).items()}
