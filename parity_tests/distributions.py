"""The distributions the spec's initializers name (scipy.stats), derived here from the
formulas in common/spec.py, independently of the implementations and the reference."""
from __future__ import annotations

import numpy as np
import scipy.stats

from common.reference.init import fans
from common.spec import Initializer

TRUNC = float(scipy.stats.truncnorm(-2, 2).std())  # derived here, not copied from common.spec
ALPHA = 0.001  # KS significance level: a sample is rejected when p < ALPHA


def distribution(init: Initializer, shape: tuple[int, ...]):
    """The spec's distribution of one tensor (fans as in common/reference/init.py)."""
    fan_in, fan_out = fans(shape)
    if init.name == "uniform":
        return scipy.stats.uniform(init.low, init.high - init.low)
    limit = np.sqrt(6.0 / ((fan_in + fan_out) if init.name == "glorot_uniform" else fan_in))
    if init.name in ("glorot_uniform", "he_uniform"):
        return scipy.stats.uniform(-limit, 2 * limit)
    s = np.sqrt(2.0 / ((fan_in + fan_out) if init.name == "glorot_normal" else fan_in))
    return scipy.stats.truncnorm(-2, 2, scale=s / TRUNC) if init.truncated else scipy.stats.norm(0, s)


def problems(init: Initializer, w: np.ndarray) -> list[str]:
    """Why a sample does not follow the initializer (empty when it does): exact values for zeros and
    constant, the support of the uniform ones and of truncated normals, KS against the distribution,
    and for an untruncated normal the expected share of samples beyond the truncation point."""
    w = np.asarray(w, np.float64)
    if init.name in ("zeros", "constant"):
        value = 0.0 if init.name == "zeros" else init.value
        return [] if np.allclose(w, value, rtol=1e-6, atol=0) else [f"not all {value} (in the run's dtype)"]
    dist, out = distribution(init, w.shape), []
    if w.size > 1 and np.unique(w).size < w.size / 2:  # a continuous distribution draws no ties
        out.append(f"only {np.unique(w).size} distinct values in {w.size} samples")
    lo, hi = dist.support()
    if np.isfinite(lo) and (w.min() < lo * (1 + 1e-6) - 1e-12 or w.max() > hi * (1 + 1e-6) + 1e-12):
        out.append(f"outside the support [{lo:.4g}, {hi:.4g}]: [{w.min():.4g}, {w.max():.4g}]")
    p = float(scipy.stats.kstest(w.ravel(), dist.cdf).pvalue)
    if p < ALPHA:
        out.append(f"KS p = {p:.2e} < {ALPHA}")
    if init.name in ("glorot_normal", "he_normal") and not init.truncated:
        bound = 2 * dist.std() / TRUNC  # where the truncated variant would cut
        expected = 2 * scipy.stats.norm.sf(bound / dist.std()) * w.size
        beyond = int(np.sum(np.abs(w) > bound))
        if expected >= 20 and beyond < expected / 2:
            out.append(f"only {beyond} samples beyond +-{bound:.4g}, expected ~{expected:.0f} (truncated?)")
    return out
