"""The JAX program of the floors' two trainings (bench/floor.py): one `jax.jit` of a `jax.lax.scan`
over the epoch's batches, so a whole epoch is one XLA program with no Python per step. The GPU
floor, and on the CPU the JAX peer: what a user who picks JAX instead gets.

float32, canonical weights (kernels (in, out)), the examples in the order given, conf5's Adam in
Keras's epsilon convention, every matrix product at HIGHEST precision (full float32 on every
device: JAX's default lets recent GPUs use TF32, which the torch rows keep off). The data is put
on the device before the clock starts, as the frameworks' fast loops do. jax is optional: this
module imports it only when a program is built, and `unavailable(device)` says why there is none.
"""
from __future__ import annotations

import time
from functools import partial

import numpy as np

from bench.floor import evaluate, unsupported
from common.spec import Spec

NAMES = ("hidden/kernel", "hidden/bias", "output/kernel", "output/bias")
HIGHEST = "highest"  # jax.lax.Precision.HIGHEST: full float32 matrix products
EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"


def threads() -> dict:
    """The threads JAX's CPU programs use, as far as XLA_FLAGS says (JAX reports no count): one for
    Eigen's matrix products when the benchmark's policy set `--xla_cpu_multi_thread_eigen=false`."""
    import os
    flags = os.environ.get("XLA_FLAGS", "")
    single = f"{EIGEN_FLAG}=false" in flags
    return {"eigen_threads": 1 if single else f"XLA's default ({os.cpu_count()} cores)", "xla_flags": flags}


def unavailable(device: str = "cuda") -> str | None:
    """Why there is no JAX floor on `device` ("cuda" or "cpu") here; None when there is one."""
    try:
        import jax
    except ImportError as exc:
        return f"jax is not installed ({exc})"
    try:
        jax.devices("gpu" if device == "cuda" else device)
    except RuntimeError as exc:
        return f"jax has no {device} device ({exc})"
    return None


def _forward(spec: Spec, params, x):
    """(hidden activations, output pre-activations z2) of float32 inputs x (n, 784)."""
    import jax.numpy as jnp
    w1, b1, w2, b2 = params
    z1 = jnp.matmul(x, w1, precision=HIGHEST) + b1  # and so their gradients' products (autodiff keeps it)
    h = jnp.maximum(z1, 0.0) if spec.network.hidden_activation == "relu" else jnp.tanh(z1)
    return h, jnp.matmul(h, w2, precision=HIGHEST) + b2


def _loss(spec: Spec, params, x, y):
    """(batch-mean loss, (loss sum, correct count)): MSE through the sigmoid, or CCE on the logits."""
    import jax
    import jax.numpy as jnp
    _, z2 = _forward(spec, params, x)
    if spec.loss.name == "mse":
        each = jnp.mean((jax.nn.sigmoid(z2) - jax.nn.one_hot(y, z2.shape[-1], dtype=z2.dtype)) ** 2, axis=-1)
    else:
        each = jax.nn.logsumexp(z2, axis=-1) - jnp.take_along_axis(z2, y[:, None], axis=-1)[:, 0]
    return jnp.mean(each), (jnp.sum(each), jnp.sum(jnp.argmax(z2, axis=-1) == y))


def _step(spec: Spec, carry, idx, x, y):
    """One update on the batch x[idx]: plain SGD (conf1) or Keras-convention Adam (conf5)."""
    import jax
    import jax.numpy as jnp
    params, m, v, t = carry
    grads, (loss_sum, correct) = jax.grad(partial(_loss, spec), has_aux=True)(params, x[idx], y[idx])
    opt = spec.optimizer
    if opt.name == "sgd":
        return (tuple(p - opt.learning_rate * g for p, g in zip(params, grads)), m, v, t), (loss_sum, correct)
    t = t + 1.0
    b1, b2 = opt.beta_1, opt.beta_2
    alpha = opt.learning_rate * jnp.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    m = tuple(b1 * a + (1.0 - b1) * g for a, g in zip(m, grads))
    v = tuple(b2 * a + (1.0 - b2) * g * g for a, g in zip(v, grads))
    params = tuple(p - alpha * a / (jnp.sqrt(b) + opt.epsilon) for p, a, b in zip(params, m, v))
    return (params, m, v, t), (loss_sum, correct)


def _epoch(spec: Spec, carry, x, y, order):
    """All whole batches of `order` in one scan, then the short last batch if any; (carry, loss sum,
    correct count)."""
    import jax
    import jax.numpy as jnp
    bs = spec.training.batch_size
    full = order.shape[0] // bs
    step = partial(_step, spec, x=x, y=y)
    carry, (losses, hits) = jax.lax.scan(step, carry, order[:full * bs].reshape(full, bs))
    loss_sum, correct = jnp.sum(losses), jnp.sum(hits)
    if order.shape[0] > full * bs:  # shapes are static: the tail is its own (smaller) step
        carry, (tail_loss, tail_hits) = step(carry, order[full * bs:])
        loss_sum, correct = loss_sum + tail_loss, correct + tail_hits
    return carry, loss_sum, correct


class JaxFloor:
    """The floor's training state on one JAX device: canonical float32 weights, Adam's moments."""

    def __init__(self, spec: Spec, weights: dict[str, np.ndarray], device: str = "cuda"):
        reason = unsupported(spec) or unavailable(device)
        if reason:
            raise ValueError(f"jax floor: {spec.name}: {reason}")
        import jax
        import jax.numpy as jnp
        self.spec, self.device = spec, jax.devices("gpu" if device == "cuda" else device)[0]
        params = tuple(jax.device_put(np.asarray(weights[k], np.float32), self.device) for k in NAMES)
        zeros = tuple(jnp.zeros_like(p) for p in params)
        self.carry = (params, zeros, zeros, jax.device_put(np.float32(0), self.device))
        donate = () if self.device.platform == "cpu" else (0,)  # the CPU backend cannot donate
        self._epoch = jax.jit(partial(_epoch, spec), donate_argnums=donate)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> dict:
        """One pass over x[order] (x (N, 784) float32); {seconds, loss, accuracy}; `seconds` is the
        training alone (the data is on the device before the clock starts)."""
        import jax
        put = partial(jax.device_put, device=self.device)
        xd, yd, od = (put(np.ascontiguousarray(a, t)) for a, t in ((x, np.float32), (y, np.int32), (order, np.int32)))
        jax.block_until_ready((xd, yd, od))
        start = time.perf_counter()
        self.carry, loss_sum, correct = jax.block_until_ready(self._epoch(self.carry, xd, yd, od))
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "loss": float(loss_sum) / len(order), "accuracy": int(correct) / len(order)}

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) on (x, y), as bench.floor.Floor.evaluate."""
        return evaluate(self.spec, self.weights(), x, y)

    def weights(self) -> dict[str, np.ndarray]:
        """A copy of the canonical weights, on the host."""
        return {k: np.array(p) for k, p in zip(NAMES, self.carry[0])}
