"""Forward and backward pass of the chapter-5 network in float64.

  z1 = x @ W1 + b1
  mode none:              h = act(z1)
  mode before_activation: h = act(BN(z1))
  mode after_activation:  h = BN(act(z1))
  z2 = h @ W2 + b2;  p = output_activation(z2)

Weights use the canonical names of common.canonical.
"""
from __future__ import annotations

import numpy as np

from common.canonical import check_weights, trainable_names
from common.reference import activations as A
from common.reference import batchnorm as BN
from common.reference import network as stack_net
from common.reference.losses import loss_gradient, loss_value
from common.spec import Spec


def as_inputs(x: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) or (N, 784) of any numeric dtype as float64 (N, 784)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], -1)


def as_float64(weights: dict[str, np.ndarray], spec: Spec) -> dict[str, np.ndarray]:
    """The weights checked against the canonical layout and cast to float64."""
    check_weights(spec, weights)
    return {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}


def forward(weights: dict[str, np.ndarray], spec: Spec, x: np.ndarray, training: bool,
            masks: dict | None = None) -> dict:
    """All intermediate values of one forward pass (any other stack than the chapter MLP:
    common.reference.network's, with each dropout layer's mask in training).

    Keys: x, z1, a (= act of its input), h, z2, p; with batch norm on also
    bn_in (what BN normalizes) and, in training mode, bn_mean, bn_var (biased),
    bn_inv_std, bn_xhat.
    """
    w, net = as_float64(weights, spec), spec.network
    if net.chapter_mlp is None:
        return stack_net.forward(w, spec, x, training, masks)
    mode, eps = net.batch_norm.mode, net.batch_norm.epsilon
    c: dict = {"x": as_inputs(x)}
    c["z1"] = c["x"] @ w["hidden/kernel"] + w["hidden/bias"]

    def bn(u: np.ndarray) -> np.ndarray:
        c["bn_in"] = u
        if training:
            y, cache = BN.train_forward(u, w["bn/gamma"], w["bn/beta"], eps)
            c.update(cache)
            return y
        return BN.inference_forward(u, w["bn/gamma"], w["bn/beta"], w["bn/moving_mean"],
                                    w["bn/moving_variance"], eps)

    if mode == "none":
        c["act_in"] = c["z1"]
        c["a"] = c["h"] = A.hidden(net, c["z1"])
    elif mode == "before_activation":
        c["act_in"] = bn(c["z1"])
        c["a"] = c["h"] = A.hidden(net, c["act_in"])
    elif mode == "after_activation":
        c["act_in"] = c["z1"]
        c["a"] = A.hidden(net, c["z1"])
        c["h"] = bn(c["a"])
    else:
        raise ValueError(f"network.batch_norm.mode: unknown {mode!r}")
    c["z2"] = c["h"] @ w["output/kernel"] + w["output/bias"]
    c["p"] = A.output(net, c["z2"])
    return c


def predict(weights: dict[str, np.ndarray], spec: Spec, x: np.ndarray) -> np.ndarray:
    """The outputs p in inference mode (batch norm uses the moving statistics)."""
    return forward(weights, spec, x, training=False)["p"]


def backward(weights: dict[str, np.ndarray], spec: Spec, cache: dict,
             dz2: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the trainable weights from dL/dz2 and a training-mode cache."""
    w, net = as_float64(weights, spec), spec.network
    mode = net.batch_norm.mode
    g = {"output/kernel": cache["h"].T @ dz2, "output/bias": np.sum(dz2, axis=0)}
    dh = dz2 @ w["output/kernel"].T
    if mode == "after_activation":
        da, g["bn/gamma"], g["bn/beta"] = BN.train_backward(dh, w["bn/gamma"], cache)
    else:
        da = dh
    d_act_in = da * A.hidden_derivative(net, cache["act_in"], cache["a"])
    if mode == "before_activation":
        dz1, g["bn/gamma"], g["bn/beta"] = BN.train_backward(d_act_in, w["bn/gamma"], cache)
    else:
        dz1 = d_act_in
    g["hidden/kernel"] = cache["x"].T @ dz1
    g["hidden/bias"] = np.sum(dz1, axis=0)
    return {name: g[name] for name in trainable_names(spec)}


def loss_gradients_and_cache(weights: dict[str, np.ndarray], spec: Spec, x: np.ndarray,
                             y: np.ndarray, masks: dict | None = None) -> tuple[float, dict[str, np.ndarray], dict]:
    """Training-mode loss, gradients of the trainable weights and the forward cache."""
    if spec.network.chapter_mlp is None:
        return stack_net.loss_gradients_and_cache(as_float64(weights, spec), spec, x, y, masks)
    cache = forward(weights, spec, x, training=True)
    y = np.asarray(y)
    loss = loss_value(spec, cache["z2"], cache["p"], y)
    grads = backward(weights, spec, cache, loss_gradient(spec, cache["z2"], cache["p"], y))
    return loss, grads, cache


def loss_and_gradients(weights: dict[str, np.ndarray], spec: Spec, x: np.ndarray,
                       y: np.ndarray, masks: dict | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """Training-mode batch-mean loss and its gradients (common.canonical.trainable_names)."""
    loss, grads, _ = loss_gradients_and_cache(weights, spec, x, y, masks)
    return loss, grads
