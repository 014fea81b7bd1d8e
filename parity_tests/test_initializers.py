"""Initializers: samples from build_model in both frameworks and from
ref.init_weights follow the spec's distribution (Kolmogorov-Smirnov, fixed
seeds), and the truncated/untruncated distinction is detectable."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats

from common import reference as ref
from common.config import load_spec
from common.layers import Conv2D, Dense, Flatten
from common.spec import Initializer, Network
from parity_tests import harness as H
from parity_tests.distributions import TRUNC, distribution

ALPHA = 0.001  # KS significance level: a sample is rejected when p < ALPHA
SEED = 17
INITS = {
    "uniform": Initializer("uniform", -0.3, 0.2),
    "glorot_uniform": Initializer("glorot_uniform"),
    "glorot_normal": Initializer("glorot_normal", truncated=True),
    "glorot_normal-untruncated": Initializer("glorot_normal", truncated=False),
    "he_normal": Initializer("he_normal", truncated=True),
    "he_normal-untruncated": Initializer("he_normal", truncated=False),
    "he_uniform": Initializer("he_uniform"),
    "zeros": Initializer("zeros"),
    "constant": Initializer("constant", value=0.37),
}
SHAPES = {"small": 25, "large": 1500}  # hidden units: hidden/kernel 784 x 25 and 784 x 1500
TENSORS = ("hidden/kernel", "hidden/bias", "output/kernel")


def spec_for(init: Initializer, units: int):
    return H.replace(load_spec("conf1"), **{"network.hidden_units": units, "network.hidden_kernel_init": init,
                                            "network.hidden_bias_init": init, "network.output_kernel_init": init})


def samples(init: Initializer, units: int) -> dict[str, dict[str, np.ndarray]]:
    spec = spec_for(init, units)
    out = {fw: H.impl(fw).get_weights(H.impl(fw).build_model(spec, seed=SEED)) for fw in H.FRAMEWORKS}
    out["ref"] = ref.init_weights(spec, SEED)
    return out


def ks_p(sample: np.ndarray, dist) -> float:
    H.STATS["arrays"] += 1
    H.STATS["elements"] += sample.size
    return float(scipy.stats.kstest(np.asarray(sample, np.float64).ravel(), dist.cdf).pvalue)


@pytest.mark.parametrize("size", SHAPES)
@pytest.mark.parametrize("name", INITS)
def test_initializer_distribution(name: str, size: str):
    init, units = INITS[name], SHAPES[size]
    H.register_config(f"init-{name}-{size}")
    for source, weights in samples(init, units).items():
        for tensor in TENSORS if size == "large" else ("hidden/kernel",):
            w = weights[tensor]
            if init.name in ("zeros", "constant"):
                assert np.all(w == np.asarray(init.value, w.dtype)), (source, tensor)
                H.STATS["arrays"] += 1
                continue
            p = ks_p(w, distribution(init, w.shape))
            assert p >= ALPHA, f"{source} {tensor} {w.shape}: KS p = {p:.2e} < {ALPHA} against {name}"


@pytest.mark.parametrize("name", ["glorot_normal", "he_normal"])
def test_truncation_is_detected(name: str):
    """Each framework's truncated sample is rejected as untruncated, and vice versa."""
    units = SHAPES["large"]
    trunc = samples(Initializer(name, truncated=True), units)
    plain = samples(Initializer(name, truncated=False), units)
    shape = trunc["ref"]["hidden/kernel"].shape
    t_dist, n_dist = (distribution(Initializer(name, truncated=v), shape) for v in (True, False))
    for source in trunc:
        assert ks_p(trunc[source]["hidden/kernel"], n_dist) < ALPHA, source
        assert ks_p(plain[source]["hidden/kernel"], t_dist) < ALPHA, source
        bound = 2 * t_dist.std() / TRUNC  # 2 * (s / 0.8796): the truncation point (t_dist.std() = s)
        assert np.abs(trunc[source]["hidden/kernel"]).max() <= bound * (1 + 1e-6)
        assert np.abs(plain[source]["hidden/kernel"]).max() > bound


def test_seeds_reproduce_and_differ():
    spec = spec_for(INITS["he_normal"], 25)
    for fw in H.FRAMEWORKS:
        a, b, c = (H.impl(fw).get_weights(H.impl(fw).build_model(spec, seed=s))["hidden/kernel"] for s in (1, 1, 2))
        assert np.array_equal(a, b) and not np.array_equal(a, c), fw


CONV = Network(input_shape=(12, 12, 16), layers=(Conv2D(filters=64, kernel_size=(5, 3)), Flatten(), Dense(units=10)))


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal-untruncated", "he_normal", "he_uniform"])
def test_conv_kernel_distribution(name: str):
    """A (5, 3, 16, 64) conv kernel drawn by each framework's own initializer: its fans count the
    kernel area (fan_in 240, fan_out 960), as Keras's compute_fans does."""
    init = INITS[name]
    spec = H.replace(load_spec("conf1"), network=dataclasses.replace(CONV, layers=(
        dataclasses.replace(CONV.layers[0], kernel_init=init), *CONV.layers[1:])))
    H.register_config(f"init-conv-{name}")
    sources = {fw: H.impl(fw).get_weights(H.impl(fw).build_model(spec, seed=SEED)) for fw in H.FRAMEWORKS}
    sources["ref"] = ref.init_weights(spec, SEED)
    for source, weights in sources.items():
        w = weights["conv2d/kernel"]
        assert w.shape == (5, 3, 16, 64)
        p = ks_p(w, distribution(init, w.shape))
        assert p >= ALPHA, f"{source} conv2d/kernel: KS p = {p:.2e} < {ALPHA} against {name}"
