"""Forward and backward pass of any layer stack in float64 (common.stack), layer by layer.

The last layer's activation is the output activation: its pre-activation z (cache "z2", as the
chapter MLP's) and p = output(z) feed the loss (common.reference.losses), as in both
frameworks' models. Dropout in training multiplies by the mask it is given (common.masks);
batch norm on images normalizes each channel over (N, height, width).
"""
from __future__ import annotations

import numpy as np

from common import stack as ST
from common.reference import activations as A
from common.reference import batchnorm as BN
from common.reference import convnet as C
from common.reference.losses import loss_gradient, loss_value
from common.spec import Spec


def as_batch(spec: Spec, x: np.ndarray) -> np.ndarray:
    """Inputs of any numeric dtype as float64 (N, *input_shape)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], *spec.network.input_shape)


def activate(name: str, slope: float, z: np.ndarray) -> np.ndarray:
    if name in ("tanh", "sigmoid", "relu", "leaky_relu"):
        return A.activate(name, slope, z)
    return A.softmax(z) if name == "softmax" else z


def activate_vjp(name: str, slope: float, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    if name in ("tanh", "sigmoid", "relu", "leaky_relu"):
        return g * A.derivative(name, slope, z, a)
    return a * (g - np.sum(g * a, axis=-1, keepdims=True)) if name == "softmax" else g


def _channels(u: np.ndarray) -> np.ndarray:
    return u.reshape(-1, u.shape[-1])


def forward(w: dict, spec: Spec, x: np.ndarray, training: bool, masks: dict | None = None) -> dict:
    """Every layer's input and output (cache[name] = {"in", "pre", "out", ...}), then z2 (the last
    layer's pre-activation) and p (the output activation of z2)."""
    walked, u = ST.walk(spec.network), as_batch(spec, x)
    c: dict = {"x": u}
    for k, layer in enumerate(walked):
        lay, rec = layer.layer, {"in": u}
        last = k == len(walked) - 1
        if lay.type == "dense":
            pre = u @ w[f"{layer.name}/kernel"] + w[f"{layer.name}/bias"]
        elif lay.type == "conv2d":
            pre = C.conv2d_forward(u, w[f"{layer.name}/kernel"], w[f"{layer.name}/bias"], lay.strides, lay.padding)
        elif lay.type == "max_pool2d":
            pre = C.max_pool2d_forward(u, lay.pool_size, lay.strides)
        elif lay.type == "flatten":
            pre = u.reshape(len(u), -1)  # C order of (N, H, W, C): Keras's NHWC flatten order
        elif lay.type == "dropout":
            if training:
                rec["mask"] = _mask(masks, layer.name, u.shape)
            pre = C.dropout_forward(u, rec["mask"], lay.rate) if training else u
        elif lay.type == "batch_norm":
            g, b = w[f"{layer.name}/gamma"], w[f"{layer.name}/beta"]
            if training:
                y, rec["bn"] = BN.train_forward(_channels(u), g, b, lay.epsilon)
            else:
                y = BN.inference_forward(_channels(u), g, b, w[f"{layer.name}/moving_mean"],
                                         w[f"{layer.name}/moving_variance"], lay.epsilon)
            pre = y.reshape(u.shape)
        else:  # activation
            pre = u
        act = getattr(lay, "activation", "linear")
        rec["pre"], rec["out"] = pre, (pre if last else activate(act, getattr(lay, "leaky_relu_slope", 0.0), pre))
        c[layer.name] = rec
        u = rec["out"]
    c["z2"] = u
    c["p"] = A.output(spec.network, u)
    return c


def _mask(masks: dict | None, name: str, shape: tuple) -> np.ndarray:
    if masks is None or name not in masks:
        raise ValueError(f"dropout layer {name!r} in training needs its mask (common.masks)")
    mask = np.asarray(masks[name], np.float64)
    if mask.shape != shape:
        raise ValueError(f"dropout layer {name!r}: mask shape {mask.shape}, input {shape}")
    return mask


def backward(w: dict, spec: Spec, c: dict, dz: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the trainable weights from dL/dz2 and a training-mode cache."""
    walked, grads, g = ST.walk(spec.network), {}, dz
    for k, layer in reversed(list(enumerate(walked))):
        lay, rec, name = layer.layer, c[layer.name], layer.name
        if k != len(walked) - 1 and hasattr(lay, "activation"):
            g = activate_vjp(lay.activation, getattr(lay, "leaky_relu_slope", 0.0), rec["pre"], rec["out"], g)
        u = rec["in"]
        if lay.type == "dense":
            grads[f"{name}/kernel"], grads[f"{name}/bias"] = u.T @ g, np.sum(g, axis=0)
            g = g @ w[f"{name}/kernel"].T
        elif lay.type == "conv2d":
            g, grads[f"{name}/kernel"], grads[f"{name}/bias"] = C.conv2d_vjp(u, w[f"{name}/kernel"], g, lay.strides,
                                                                             lay.padding)
        elif lay.type == "max_pool2d":
            g = C.max_pool2d_vjp(u, g, lay.pool_size, lay.strides)
        elif lay.type == "flatten":
            g = g.reshape(u.shape)
        elif lay.type == "dropout":
            g = C.dropout_vjp(g, rec["mask"], lay.rate)
        elif lay.type == "batch_norm":
            du, grads[f"{name}/gamma"], grads[f"{name}/beta"] = BN.train_backward(_channels(g), w[f"{name}/gamma"],
                                                                                  rec["bn"])
            g = du.reshape(u.shape)
    return {n: grads[n] for n in ST.weight_shapes(spec.network) if n in grads}


def loss_gradients_and_cache(w: dict, spec: Spec, x: np.ndarray, y: np.ndarray,
                             masks: dict | None = None) -> tuple[float, dict[str, np.ndarray], dict]:
    """Training-mode loss, gradients of the trainable weights and the forward cache."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    c = forward(w, spec, x, True, masks)
    y = np.asarray(y)
    loss = loss_value(spec, c["z2"], c["p"], y)
    return loss, backward(w, spec, c, loss_gradient(spec, c["z2"], c["p"], y)), c


def moving_stats(w: dict, spec: Spec, c: dict) -> dict[str, np.ndarray]:
    """Every batch-norm layer's moving mean and variance after the batch of cache c."""
    out = {}
    for layer in ST.walk(spec.network):
        if layer.layer.type == "batch_norm":
            bn, n = c[layer.name]["bn"], len(_channels(c[layer.name]["in"]))
            out[f"{layer.name}/moving_mean"], out[f"{layer.name}/moving_variance"] = BN.updated_moving_stats(
                layer.layer, np.asarray(w[f"{layer.name}/moving_mean"], np.float64),
                np.asarray(w[f"{layer.name}/moving_variance"], np.float64), bn["bn_mean"], bn["bn_var"], n)
    return out
