"""The parity suite's data: the real MNIST (never a synthetic stand-in for a missing
dataset) and, where batch norm needs it, Gaussian pixels with MNIST's labels."""
from __future__ import annotations

import functools

import numpy as np


@functools.cache
def data_pool(n: int = 4096) -> tuple[np.ndarray, np.ndarray, str]:
    """(x (n, 784) float64 holding float32-exact standardized MNIST pixels, y, source)."""
    from common.data import load_mnist
    x, y, _, _ = load_mnist(standardize=True, dtype="float32")
    return x[:n].reshape(n, 784).astype(np.float64), y[:n].copy(), "mnist[:%d]" % n


@functools.cache
def gaussian_pool(n: int = 4096) -> tuple[np.ndarray, np.ndarray, str]:
    """Standardized Gaussian "pixels" (float32-exact) with MNIST's labels: no pixel is
    constant within a batch (see trajectory.run_trajectory on batch norm before the activation)."""
    rng = np.random.default_rng(12345)
    return rng.standard_normal((n, 784)).astype(np.float32).astype(np.float64), data_pool(n)[1], "gaussian"


def batches(batch_size: int, steps: int, seed: int = 0, gaussian: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """`steps` disjoint batches drawn from the pool in a seeded order."""
    x, y, _ = gaussian_pool() if gaussian else data_pool()
    order = np.random.default_rng(seed).permutation(len(x))
    need = batch_size * steps
    order = np.resize(order, need)  # wraps around when more is needed than the pool holds
    return [(x[order[i:i + batch_size]], y[order[i:i + batch_size]]) for i in range(0, need, batch_size)]
