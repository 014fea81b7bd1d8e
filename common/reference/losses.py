"""The losses of common.spec.Loss: value and gradient with respect to z2.

The loss is the batch mean of a per-example loss. `formula = "logits"` works on
the output pre-activation z2 (exact log-sum-exp / softplus forms); `"clipped"`
works on the probabilities p as Keras 3 does for plain probabilities
(keras/src/backend/tensorflow/nn.py, binary_crossentropy and
categorical_crossentropy with from_logits=False): clip to [eps, 1 - eps],
no epsilon inside the log; categorical first divides p by its sum. The
gradient of a clip is zero outside the closed range, as tf.clip_by_value's.
(Keras itself takes the logits path whenever its output tensor carries
`_keras_logits`, i.e. after any sigmoid or softmax activation, even for a
mismatched pair such as sigmoid + categorical: backend/tensorflow/nn.py
_get_logits. "clipped" here is the formula, not that dispatch.)
"""
from __future__ import annotations

import numpy as np

from common.reference import activations as A
from common.spec import Spec


def one_hot(y: np.ndarray, k: int) -> np.ndarray:
    """Integer labels (N,) as float64 one-hot targets (N, k)."""
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got range [{y.min()}, {y.max()}]")
    return np.eye(k, dtype=np.float64)[y]


def per_example_loss(spec: Spec, z2: np.ndarray, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The loss of each example, shape (N,)."""
    loss, t = spec.loss, one_hot(y, z2.shape[-1])
    if loss.name == "mse":
        return np.mean((t - p) ** 2, axis=-1)
    if loss.name == "binary_crossentropy":
        if loss.formula == "logits":
            z = z2
            return np.mean(np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z))), axis=-1)
        pc = np.clip(p, loss.epsilon, 1.0 - loss.epsilon)
        return -np.mean(t * np.log(pc) + (1.0 - t) * np.log(1.0 - pc), axis=-1)
    if loss.name == "categorical_crossentropy":
        if loss.formula == "logits":
            return -np.sum(t * A.log_softmax(z2), axis=-1)
        q = np.clip(p / np.sum(p, axis=-1, keepdims=True), loss.epsilon, 1.0 - loss.epsilon)
        return -np.sum(t * np.log(q), axis=-1)
    if loss.name == "nll":  # p: the log-probabilities of a log_softmax output
        return -np.sum(t * p, axis=-1)
    raise ValueError(f"loss.name: unknown {loss.name!r}")


def loss_value(spec: Spec, z2: np.ndarray, p: np.ndarray, y: np.ndarray) -> float:
    """The batch-mean loss from the output pre-activation z2, the outputs p and labels y."""
    return float(np.mean(per_example_loss(spec, z2, p, y)))


def _clip_mask(v: np.ndarray, eps: float) -> np.ndarray:
    """1 where clip(v, eps, 1 - eps) passes the gradient (inside the closed range)."""
    return ((v >= eps) & (v <= 1.0 - eps)).astype(np.float64)


def loss_gradient(spec: Spec, z2: np.ndarray, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dz2 of the batch-mean loss, shape (N, K)."""
    loss, net = spec.loss, spec.network
    n, k = z2.shape
    t = one_hot(y, k)
    if loss.name == "binary_crossentropy" and loss.formula == "logits":
        return (A.sigmoid(z2) - t) / (n * k)
    if loss.name == "categorical_crossentropy" and loss.formula == "logits" or loss.name == "nll":
        return (A.softmax(z2) - t) / n
    if loss.name == "mse":
        dp = 2.0 * (p - t) / k
    elif loss.name == "binary_crossentropy":
        eps = loss.epsilon
        pc = np.clip(p, eps, 1.0 - eps)
        dp = -(t / pc - (1.0 - t) / (1.0 - pc)) / k * _clip_mask(p, eps)
    elif loss.name == "categorical_crossentropy":
        eps = loss.epsilon
        s = np.sum(p, axis=-1, keepdims=True)
        q = p / s
        dq = -t / np.clip(q, eps, 1.0 - eps) * _clip_mask(q, eps)
        dp = (dq - np.sum(dq * q, axis=-1, keepdims=True)) / s
    else:
        raise ValueError(f"loss.name: unknown {loss.name!r}")
    return A.output_backward(net, p, dp / n)
