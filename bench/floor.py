"""The floors: the same training as the frameworks, the fastest honest way this machine runs
it without a framework.

conf1: per-example SGD (tanh hidden, sigmoid output, MSE, lr 0.01, batch 1) as a C loop
  (bench/csrc/conf1_epoch.c, built with cffi: -O3 -march=native, the loops over the hidden
  units vectorized, fused multiply-adds the only liberty).
conf5: Adam (Keras epsilon convention) on mini-batches, ReLU hidden, softmax output with
  categorical cross-entropy on the logits, as one Numba-compiled loop whose two large
  products per step are BLAS sgemm calls (np.dot) and whose elementwise work is fused.

Everything is float32, weights in the canonical layout (kernels (in, out)), the examples
visited in the order given (the shared `epoch_permutation`), no Python per step. Each floor
row passes the same parity gate against common.reference as the framework rows
(bench/measure.py), and tests/core/test_bench_floor.py checks the updates in `tox`.
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from common.spec import Spec

F32 = np.float32


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
    each weight, flattened) updated in place, step[0] counts updates. The two large products
    (x W1 and x^T dz1) are BLAS sgemm calls (np.dot in Numba); everything elementwise is one
    fused loop. Returns (loss sum, correct count)."""
    d_in, hid = w1.shape
    k_out = w2.shape[1]
    n_total = order.shape[0]
    zero, one = np.float32(0.0), np.float32(1.0)
    xb_full = np.empty((batch, d_in), np.float32)
    b_1, b_2, e_ps = np.float32(beta_1), np.float32(beta_2), np.float32(eps)
    loss_sum, correct = 0.0, 0
    for start in range(0, n_total, batch):
        n = min(batch, n_total - start)
        inv_n = one / np.float32(n)
        xb = xb_full[:n]
        for r in range(n):  # the batch, gathered into one contiguous block
            xb[r] = x[order[start + r]]
        a = np.dot(xb, w1)  # sgemm: z1 = x W1 (+ b1 and relu below, in place)
        for r in range(n):
            for j in range(hid):
                a[r, j] = max(a[r, j] + b1[j], zero)
        dz2 = np.dot(a, w2)
        for r in range(n):  # softmax + CCE on the logits: dL/dz2 = (softmax - t) / n
            label = y[order[start + r]]
            zmax, best = -np.inf, 0
            for k in range(k_out):
                dz2[r, k] += b2[k]
                if dz2[r, k] > zmax:
                    zmax, best = dz2[r, k], k
            correct += best == label
            loss_sum -= dz2[r, label] - zmax
            total = zero
            for k in range(k_out):
                dz2[r, k] = np.exp(dz2[r, k] - zmax)
                total += dz2[r, k]
            loss_sum += np.log(total)
            for k in range(k_out):
                dz2[r, k] = (dz2[r, k] / total - (one if k == label else zero)) * inv_n
        dz1 = np.dot(dz2, w2.T)  # with the pre-update W2; relu' = 1 where a > 0
        for r in range(n):
            for j in range(hid):
                if a[r, j] <= zero:
                    dz1[r, j] = zero
        g1 = np.dot(xb.T, dz1)  # sgemm: x^T dz1
        g2 = np.dot(a.T, dz2)
        gb1, gb2 = dz1.sum(axis=0), dz2.sum(axis=0)
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
            from bench import cfloor
            loss_sum, correct = cfloor.conf1_epoch(*params, np.ascontiguousarray(x, F32),
                                                   np.ascontiguousarray(y, np.int64), o, opt.learning_rate)
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
