"""The compiled floor: the same training as the frameworks, in one Numba-compiled loop.

conf1: per-example SGD (tanh hidden, sigmoid output, MSE, lr 0.01, batch 1).
conf5: Adam (Keras epsilon convention) on mini-batches, ReLU hidden, softmax
output with categorical cross-entropy on the logits.

Everything is float32, weights in the canonical layout (kernels (in, out)), the
examples visited in the order given (the shared `epoch_permutation`). There is
no framework, no Python per step and no allocation per example (only fused
multiply-adds are allowed as a fast-math liberty: `contract`), so an epoch's
time is a floor the frameworks can be measured against ("x floor").
bench/test_floor.py checks the updates against common.reference.train_step.
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from common.spec import Spec

F32 = np.float32


@njit(cache=False, nogil=True, fastmath={"contract"})
def _sgd_tanh_sigmoid_mse_epoch(w1, b1, w2, b2, x, y, order, lr):  # pragma: no cover - compiled
    """conf1: one pass of per-example SGD over x[order]; weights updated in place.
    Returns (sum of per-example losses, number of correct predictions before each update)."""
    d_in, hid = w1.shape
    k_out = w2.shape[1]
    one, two_over_k = np.float32(1.0), np.float32(2.0) / np.float32(k_out)
    z1 = np.empty(hid, np.float32)
    h = np.empty(hid, np.float32)
    dz1 = np.empty(hid, np.float32)
    p = np.empty(k_out, np.float32)
    dz2 = np.empty(k_out, np.float32)
    loss_sum, correct = 0.0, 0
    for s in range(order.shape[0]):
        i = order[s]
        xi = x[i]
        for j in range(hid):
            z1[j] = b1[j]
        for d in range(d_in):  # z1 = x @ W1 + b1 (inner loop contiguous: vectorizes)
            xd = xi[d]
            for j in range(hid):
                z1[j] += xd * w1[d, j]
        for j in range(hid):
            h[j] = np.tanh(z1[j])
        best = 0
        for k in range(k_out):  # z2 = h @ W2 + b2, p = sigmoid(z2)
            acc = b2[k]
            for j in range(hid):
                acc += h[j] * w2[j, k]
            p[k] = one / (one + np.exp(-acc))
            if p[k] > p[best]:
                best = k
        correct += best == y[i]
        for k in range(k_out):  # MSE: dL/dp = 2 (p - t) / K; through the sigmoid
            t = one if k == y[i] else np.float32(0.0)
            diff = p[k] - t
            loss_sum += diff * diff / k_out
            dz2[k] = two_over_k * diff * p[k] * (one - p[k])
        for j in range(hid):  # dz1 with the pre-update W2
            dh = np.float32(0.0)
            for k in range(k_out):
                dh += w2[j, k] * dz2[k]
            dz1[j] = dh * (one - h[j] * h[j])
        for j in range(hid):
            for k in range(k_out):
                w2[j, k] -= lr * h[j] * dz2[k]
        for k in range(k_out):
            b2[k] -= lr * dz2[k]
        for d in range(d_in):
            xd = lr * xi[d]
            for j in range(hid):
                w1[d, j] -= xd * dz1[j]
        for j in range(hid):
            b1[j] -= lr * dz1[j]
    return loss_sum, correct


@njit(cache=False, nogil=True, fastmath={"contract"})
def _adam_update(w, g, m, v, alpha, beta_1, beta_2, eps):  # pragma: no cover - compiled
    """Keras's Adam on a flat view: m, v moments; w -= alpha * m / (sqrt(v) + eps)."""
    one = np.float32(1.0)
    for i in range(w.size):
        m[i] = beta_1 * m[i] + (one - beta_1) * g[i]
        v[i] = beta_2 * v[i] + (one - beta_2) * g[i] * g[i]
        w[i] -= alpha * m[i] / (np.sqrt(v[i]) + eps)


@njit(cache=False, nogil=True, fastmath={"contract"})
def _adam_relu_softmax_cce_epoch(w1, b1, w2, b2, moments, step, x, y, order, batch, lr, beta_1, beta_2,
                                 eps):  # pragma: no cover - compiled
    """conf5: one pass of mini-batch Adam over x[order]; weights and the moments (m and v of
    each weight, flattened) updated in place, step[0] counts updates. Explicit loops, no
    BLAS: single-threaded by construction. Returns (loss sum, correct count)."""
    d_in, hid = w1.shape
    k_out = w2.shape[1]
    n_total = order.shape[0]
    zero, one = np.float32(0.0), np.float32(1.0)
    z1 = np.empty((batch, hid), np.float32)
    dz2 = np.empty((batch, k_out), np.float32)
    dz1 = np.empty((batch, hid), np.float32)
    g1, gb1 = np.empty_like(w1), np.empty_like(b1)
    g2, gb2 = np.empty_like(w2), np.empty_like(b2)
    b_1, b_2, e_ps = np.float32(beta_1), np.float32(beta_2), np.float32(eps)
    loss_sum, correct = 0.0, 0
    for start in range(0, n_total, batch):
        n = min(batch, n_total - start)
        inv_n = one / np.float32(n)
        for r in range(n):  # forward: z1 = x W1 + b1, a = relu(z1) (kept in z1), z2 = a W2 + b2
            xi = x[order[start + r]]
            for j in range(hid):
                z1[r, j] = b1[j]
            for d in range(d_in):
                xd = xi[d]
                for j in range(hid):
                    z1[r, j] += xd * w1[d, j]
            for j in range(hid):
                z1[r, j] = max(z1[r, j], zero)
            zmax = -np.inf
            for k in range(k_out):
                acc = b2[k]
                for j in range(hid):
                    acc += z1[r, j] * w2[j, k]
                dz2[r, k] = acc
                zmax = max(zmax, acc)
            label = y[order[start + r]]
            total, best = zero, 0
            for k in range(k_out):
                if dz2[r, k] > dz2[r, best]:
                    best = k
            correct += best == label
            loss_sum -= dz2[r, label] - zmax
            for k in range(k_out):  # softmax + CCE on the logits: dL/dz2 = (softmax - t) / n
                dz2[r, k] = np.exp(dz2[r, k] - zmax)
                total += dz2[r, k]
            loss_sum += np.log(total)
            for k in range(k_out):
                dz2[r, k] = (dz2[r, k] / total - (one if k == label else zero)) * inv_n
            for j in range(hid):  # dz1 = dz2 W2^T * relu'(z1)  (relu' = 1 where a > 0)
                dh = zero
                for k in range(k_out):
                    dh += dz2[r, k] * w2[j, k]
                dz1[r, j] = dh if z1[r, j] > zero else zero
        g1[:], gb1[:], g2[:], gb2[:] = zero, zero, zero, zero
        for r in range(n):  # gradients: x^T dz1, sum dz1, a^T dz2, sum dz2
            xi = x[order[start + r]]
            for d in range(d_in):
                xd = xi[d]
                for j in range(hid):
                    g1[d, j] += xd * dz1[r, j]
            for j in range(hid):
                gb1[j] += dz1[r, j]
                for k in range(k_out):
                    g2[j, k] += z1[r, j] * dz2[r, k]
            for k in range(k_out):
                gb2[k] += dz2[r, k]
        step[0] += 1
        t = step[0]
        alpha = np.float32(lr * np.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t))
        _adam_update(w1.ravel(), g1.ravel(), moments[0], moments[1], alpha, b_1, b_2, e_ps)
        _adam_update(b1, gb1, moments[2], moments[3], alpha, b_1, b_2, e_ps)
        _adam_update(w2.ravel(), g2.ravel(), moments[4], moments[5], alpha, b_1, b_2, e_ps)
        _adam_update(b2, gb2, moments[6], moments[7], alpha, b_1, b_2, e_ps)
    return loss_sum, correct


def unsupported(spec: Spec) -> str | None:
    """Why the floor cannot train `spec` (None when it can)."""
    net, opt, loss, t = spec.network, spec.optimizer, spec.loss, spec.training
    if net.batch_norm.mode != "none" or t.dtype != "float32":
        return "the floor has no batch norm and computes in float32 only"
    if (net.hidden_activation, net.output_activation, loss.name) == ("tanh", "sigmoid", "mse"):
        if opt.name == "sgd" and opt.momentum == 0 and t.batch_size == 1:
            return None
    if (net.hidden_activation, net.output_activation, loss.name, loss.formula) == \
            ("relu", "softmax", "categorical_crossentropy", "logits"):
        if opt.name == "adam" and opt.epsilon_convention == "keras":
            return None
    return "the floor implements conf1 (tanh/sigmoid/MSE/SGD batch 1) and conf5 (ReLU/softmax/CCE/Adam) only"


class Floor:
    """Floor training state: canonical float32 weights (and Adam moments)."""

    names = ("hidden/kernel", "hidden/bias", "output/kernel", "output/bias")

    def __init__(self, spec: Spec, weights: dict[str, np.ndarray]):
        reason = unsupported(spec)
        if reason:
            raise ValueError(f"floor: {spec.name}: {reason}")
        self.spec = spec
        self.w = {k: np.ascontiguousarray(v, dtype=F32).copy() for k, v in weights.items()}
        self.adam = spec.optimizer.name == "adam"
        self.moments = [np.zeros(self.w[k].size, F32) for k in self.names for _ in (0, 1)]
        self.step = np.zeros(1, np.int64)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> dict:
        """One pass over x[order] (x (N, 784) float32); {seconds, loss, accuracy} of the pass."""
        o, opt = np.ascontiguousarray(order, dtype=np.int64), self.spec.optimizer
        params = tuple(self.w[k] for k in self.names)
        start = time.perf_counter()
        if self.adam:
            loss_sum, correct = _adam_relu_softmax_cce_epoch(
                *params, tuple(self.moments), self.step, x, y, o, self.spec.training.batch_size,
                opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon)
        else:
            loss_sum, correct = _sgd_tanh_sigmoid_mse_epoch(*params, x, y, o, F32(opt.learning_rate))
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "loss": float(loss_sum) / len(o), "accuracy": int(correct) / len(o)}

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) on (x, y) with a float32 NumPy forward pass."""
        from common.reference.losses import loss_value
        w = self.w
        h = x.reshape(len(x), -1) @ w["hidden/kernel"] + w["hidden/bias"]
        h = np.maximum(h, 0) if self.adam else np.tanh(h)
        z2 = h @ w["output/kernel"] + w["output/bias"]
        p = np.exp(z2 - z2.max(-1, keepdims=True)) if self.adam else 1 / (1 + np.exp(-z2))
        p = p / p.sum(-1, keepdims=True) if self.adam else p
        return loss_value(self.spec, z2.astype(np.float64), p.astype(np.float64), y), \
            float(np.mean(np.argmax(z2, -1) == y))

    def weights(self) -> dict[str, np.ndarray]:
        """A copy of the canonical weights."""
        return {k: v.copy() for k, v in self.w.items()}
