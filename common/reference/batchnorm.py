"""Batch normalization of the hidden layer: training forward/backward, inference,
and the moving-statistics update (common.spec.BatchNorm).

Matches keras/src/layers/normalization/batch_normalization.py: the batch mean and
the biased batch variance normalize; moving = momentum * moving +
(1 - momentum) * batch statistic; inference uses the moving statistics.
"""
from __future__ import annotations

import numpy as np

from common.spec import BatchNorm


def train_forward(u: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                  eps: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """y = gamma * (u - mean) / sqrt(var + eps) + beta with batch statistics.

    Returns y and a cache with bn_mean, bn_var (biased), bn_inv_std and bn_xhat.
    """
    if u.shape[0] < 2:
        raise ValueError(f"batch normalization in training needs at least 2 examples, got {u.shape[0]}")
    mean = np.mean(u, axis=0)
    var = np.mean((u - mean) ** 2, axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (u - mean) * inv_std
    cache = {"bn_mean": mean, "bn_var": var, "bn_inv_std": inv_std, "bn_xhat": xhat}
    return gamma * xhat + beta, cache


def inference_forward(u: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      moving_mean: np.ndarray, moving_variance: np.ndarray,
                      eps: float) -> np.ndarray:
    """y = gamma * (u - moving_mean) / sqrt(moving_variance + eps) + beta."""
    return gamma * (u - moving_mean) / np.sqrt(moving_variance + eps) + beta


def train_backward(dy: np.ndarray, gamma: np.ndarray,
                   cache: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(du, dgamma, dbeta) through the training-mode normalization, including the
    dependence of the batch mean and variance on every input."""
    xhat, inv_std = cache["bn_xhat"], cache["bn_inv_std"]
    n = dy.shape[0]
    dgamma = np.sum(dy * xhat, axis=0)
    dbeta = np.sum(dy, axis=0)
    dxhat = dy * gamma
    du = inv_std / n * (n * dxhat - np.sum(dxhat, axis=0) - xhat * np.sum(dxhat * xhat, axis=0))
    return du, dgamma, dbeta


def updated_moving_stats(bn: BatchNorm, moving_mean: np.ndarray, moving_variance: np.ndarray,
                         mean: np.ndarray, var: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The moving mean and variance after one training batch of n examples whose
    biased batch statistics are (mean, var); `running_variance` picks var or
    var * n / (n - 1) as the variance fed to the moving average."""
    run_var = var if bn.running_variance == "biased" else var * n / (n - 1)
    m = bn.momentum
    return m * moving_mean + (1.0 - m) * mean, m * moving_variance + (1.0 - m) * run_var
