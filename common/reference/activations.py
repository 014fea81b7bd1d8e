"""Hidden and output activations of the reference network, with their derivatives.

Everything is float64 numpy; the formulas are the ones named in common.spec.
"""
from __future__ import annotations

import numpy as np

from common.spec import Network


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), evaluated without overflow and with full relative precision."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis (log-sum-exp with the max shifted out)."""
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """softmax over the last axis."""
    return np.exp(log_softmax(z))


def hidden(net: Network, z: np.ndarray) -> np.ndarray:
    """The hidden activation act(z)."""
    return activate(net.hidden_activation, net.leaky_relu_slope, z)


def activate(name: str, slope: float, z: np.ndarray) -> np.ndarray:
    """tanh, sigmoid, relu or leaky_relu (with its slope) of z."""
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    raise ValueError(f"activation: unknown {name!r}")


def hidden_derivative(net: Network, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d act(z) / dz, given z and a = act(z); relu/leaky_relu take the z > 0 branch
    only for z strictly positive (derivative 0, resp. slope, at 0, as TF)."""
    return derivative(net.hidden_activation, net.leaky_relu_slope, z, a)


def derivative(name: str, slope: float, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d act(z) / dz of `activate(name, slope, z)`, given z and a = act(z)."""
    if name == "tanh":
        return 1.0 - a * a
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope)
    raise ValueError(f"activation: unknown {name!r}")


def output(net: Network, z: np.ndarray) -> np.ndarray:
    """The output activation p = f(z2)."""
    name = net.output_activation
    if name == "sigmoid":
        return sigmoid(z)
    if name == "softmax":
        return softmax(z)
    if name == "linear":
        return z.copy()
    if name == "log_softmax":
        return log_softmax(z)
    raise ValueError(f"network.output_activation: unknown {name!r}")


def output_backward(net: Network, p: np.ndarray, dp: np.ndarray) -> np.ndarray:
    """dL/dz2 from dL/dp through the output activation (softmax: full Jacobian)."""
    name = net.output_activation
    if name == "sigmoid":
        return dp * p * (1.0 - p)
    if name == "softmax":
        return p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    if name == "linear":
        return dp.copy()
    if name == "log_softmax":  # p = log softmax(z): dz = dp - softmax(z) sum(dp)
        return dp - np.exp(p) * np.sum(dp, axis=-1, keepdims=True)
    raise ValueError(f"network.output_activation: unknown {name!r}")
