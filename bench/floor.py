"""The floors: the same training as the frameworks, the fastest plain code this machine runs
it with, no framework: C loops built once with cffi (bench/cfloor.py, bench/csrc/), -O3
-march=native -ffast-math, so reductions run in any order, as the frameworks' kernels do.

conf1: per-example SGD (tanh hidden, sigmoid output, MSE, lr 0.01, batch 1), W1 swept once per
  example (the update of one example fused with the next one's forward dot products).
conf5: Adam (Keras epsilon convention) on mini-batches, ReLU hidden, softmax output with
  categorical cross-entropy on the logits; the two large products per step are register-blocked
  vector loops, the hidden kernel's gradient fused into its Adam update.

Everything is float32, weights in the canonical layout (kernels (in, out)) outside the C code,
the examples visited in the order given (the shared `epoch_permutation`), no Python per step.
Each floor row passes the same parity gate against common.reference as the framework rows
(bench/measure.py), and tests/core/test_bench_floor.py checks the updates in `tox`.
"""
from __future__ import annotations

import time

import numpy as np

from bench import cfloor
from common.spec import Spec

F32 = np.float32


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


def evaluate(spec: Spec, w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean loss, accuracy) of canonical float32 weights `w` on (x, y), a NumPy forward pass."""
    from common.reference.losses import loss_value
    relu = spec.network.hidden_activation == "relu"  # conf5; else conf1's tanh / sigmoid
    h = x.reshape(len(x), -1) @ w["hidden/kernel"] + w["hidden/bias"]
    h = np.maximum(h, 0) if relu else np.tanh(h)
    z2 = h @ w["output/kernel"] + w["output/bias"]
    p = np.exp(z2 - z2.max(-1, keepdims=True)) if relu else 1 / (1 + np.exp(-z2))
    p = p / p.sum(-1, keepdims=True) if relu else p
    return loss_value(spec, z2.astype(np.float64), p.astype(np.float64), y), float(np.mean(np.argmax(z2, -1) == y))


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
        # Adam's m and v, each [hidden/kernel transposed | the other weights] flattened, the C layout
        self.moments = np.zeros((2, sum(v.size for v in self.w.values())), F32)
        self.step = np.zeros(1, np.int64)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> dict:
        """One pass over x[order] (x (N, 784) float32); {seconds, loss, accuracy} of the pass."""
        o, opt = np.ascontiguousarray(order, dtype=np.int64), self.spec.optimizer
        params = tuple(self.w[k] for k in self.names)
        x, y = np.ascontiguousarray(x, F32), np.ascontiguousarray(y, np.int64)
        start = time.perf_counter()
        if self.adam:
            loss_sum, correct = cfloor.conf5_epoch(*params, self.moments, self.step, x, y, o,
                                                   self.spec.training.batch_size, opt)
        else:
            loss_sum, correct = cfloor.conf1_epoch(*params, x, y, o, opt.learning_rate)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "loss": float(loss_sum) / len(o), "accuracy": int(correct) / len(o)}

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) on (x, y) with a float32 NumPy forward pass."""
        return evaluate(self.spec, self.w, x, y)

    def weights(self) -> dict[str, np.ndarray]:
        """A copy of the canonical weights."""
        return {k: v.copy() for k, v in self.w.items()}
