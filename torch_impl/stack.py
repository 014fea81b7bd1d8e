"""Any layer stack of the spec (common.stack) as PyTorch modules: PyTorch's own Conv2d,
MaxPool2d, Flatten, Linear, BatchNorm and activations, and the one dropout module PyTorch has no
form of: dropout with twinbench's shared masks (common.masks). The canonical layouts are Keras's;
the mapping of each tensor is here, in to_canonical / from_canonical."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from common import masks
from common.stack import same_padding, walk
from common.spec import Network, Spec

# --- section: shared_dropout ---


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """(h * c) mod 2^32 for 32-bit values in int64, in 16-bit halves of c (no int64 overflow)."""
    return (h * (c & 0xFFFF) + (((h * (c >> 16)) & 0xFFFF) << 16)) & masks.M32


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """common.masks.fmix32 on int64 tensors holding 32-bit values."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def step_key(seed: int, step: int, layer: int) -> int:
    """common.masks.step_key (PT: the step is a Python int here, counted by the training loop)."""
    return masks.step_key(seed, step, layer)


def keep_mask(key: int, shape: torch.Size, rate: float, dtype, device) -> torch.Tensor:
    """common.masks.keep_mask, computed where the tensor lives."""
    i = torch.arange(int(np.prod(tuple(shape))), dtype=torch.int64, device=device)
    h = _fmix32(_mul32(i, masks.GOLDEN) + key & masks.M32)
    return ((h >> 8) >= masks.threshold(rate)).to(dtype).reshape(shape)


class SharedDropout(nn.Module):
    """Dropout whose mask at training step t is common.masks' (seed, t, layer): the same inputs
    dropped as in TensorFlow. PT: nn.Dropout draws its own mask and takes none."""

    def __init__(self, rate: float, seed: int, index: int, step, order=None):
        super().__init__()
        self.rate, self.seed, self.index, self.step = rate, seed, index, step  # step: () -> the step count
        self.order = None if order is None else torch.as_tensor(order)  # a flattened image's permutation

    def forward(self, inputs):
        if not self.training:
            return inputs
        # PT: the canonical mask is NHWC, and a flattened image's in NHWC order; PyTorch's are NCHW
        shape = (inputs.shape[0], *inputs.shape[2:], inputs.shape[1]) if inputs.dim() == 4 else inputs.shape
        mask = keep_mask(step_key(self.seed, self.step(), self.index), shape, self.rate, inputs.dtype, inputs.device)
        if inputs.dim() == 4:
            mask = mask.permute(0, 3, 1, 2)
        elif self.order is not None:
            mask = mask[:, self.order.to(mask.device)]
        return inputs * mask / (1.0 - self.rate)


def flatten_permutation(height: int, width: int, channels: int) -> np.ndarray:
    """PT: nn.Flatten of NCHW puts x[c, h, w] at c*H*W + h*W + w; the canonical (Keras, NHWC) flatten
    at (h*W + w)*C + c. Entry j: the canonical index of PyTorch's position j."""
    return np.arange(height * width * channels).reshape(height, width, channels).transpose(2, 0, 1).ravel()


@lru_cache(maxsize=64)
def flat_orders(net: Network) -> tuple:
    """Each layer's input order: None (canonical), or the flatten permutation of an image
    flattened upstream (until a dense layer mixes it)."""
    orders, order = [], None
    for w in walk(net):
        orders.append(order)
        if w.layer.type == "flatten" and len(w.input_shape) == 3:
            order = flatten_permutation(*w.input_shape)
        elif w.layer.type == "dense":
            order = None
    return tuple(orders)


# --- section: stack_layers ---


def activation(name: str, slope: float) -> nn.Module | None:
    """PyTorch's activation module; leaky_relu with the spec's slope."""
    if name == "leaky_relu":  # PT: PyTorch's LeakyReLU slope defaults to 0.01, Keras 3's to 0.3
        return nn.LeakyReLU(negative_slope=slope)
    return {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "linear": lambda: None,
            "softmax": lambda: nn.Softmax(dim=1), "log_softmax": lambda: nn.LogSoftmax(dim=1)}[name]()


def stack_layers(spec: Spec, seed: int, make_initializer, step, bn_class) -> list[tuple[str, nn.Module]]:
    """(name, module) of the stack's layers, named as common.stack names them (an activation after
    its layer as `<name>_act`, 'same' padding before it as `<name>_pad`); the last layer linear.
    step: () -> the optimizer steps taken, for the masks; bn_class(layer, features)."""
    walked, out, orders = walk(spec.network), [], flat_orders(spec.network)
    for k, w in enumerate(walked):
        lay, name, shape = w.layer, w.name, w.input_shape
        if lay.type == "dense":
            module = nn.Linear(shape[0], lay.units)
        elif lay.type == "conv2d":
            if lay.padding == "same":  # PT: padding='same' takes stride 1 only; the extra zero after, as TF
                pads = [same_padding(n, kk, s) for n, kk, s in zip(shape[:2], lay.kernel_size, lay.strides)]
                out.append((f"{name}_pad", nn.ZeroPad2d((*pads[1], *pads[0]))))
            module = nn.Conv2d(shape[2], lay.filters, lay.kernel_size, lay.strides)
        elif lay.type == "max_pool2d":
            module = nn.MaxPool2d(lay.pool_size, lay.strides)
        elif lay.type == "flatten":
            module = nn.Flatten()
        elif lay.type == "dropout":
            module = SharedDropout(lay.rate, seed, k, step, orders[k])
        elif lay.type == "batch_norm":
            module = bn_class(lay, shape[-1], len(shape))
        else:
            module = None
        if hasattr(lay, "kernel_init"):
            with torch.no_grad():
                s = seed + 2 * k  # a seed per layer, as the MLP's hidden/output take seed and seed + 2
                make_initializer(lay.kernel_init, s)(module.weight), make_initializer(lay.bias_init, s + 1)(module.bias)
        if module is not None:
            out.append((name, module))
        act = None if k == len(walked) - 1 else activation(getattr(lay, "activation", "linear"),
                                                           getattr(lay, "leaky_relu_slope", 0.0))
        if act is not None:
            out.append((name if module is None else f"{name}_act", act))
    return out


def input_shape(spec: Spec) -> tuple[int, ...]:
    """PT: images are NCHW."""
    shape = tuple(spec.network.input_shape)
    return (shape[2], *shape[:2]) if len(shape) == 3 else shape


def as_batch(spec: Spec, x: np.ndarray) -> np.ndarray:
    """Inputs in the spec's dtype, shaped (N, *input_shape) (NCHW images, from NHWC)."""
    x = np.asarray(x, dtype=spec.training.dtype).reshape(-1, *spec.network.input_shape)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


# --- section: canonical_layout ---


@lru_cache(maxsize=64)
def _layouts(net: Network) -> dict[str, tuple[str, object]]:
    """Canonical weight name -> (kind, the flatten permutation its input rows or features are in):
    a dense kernel's rows, a batch norm's features; never a bias (it follows the outputs)."""
    orders, out = flat_orders(net), {}
    for k, w in enumerate(walk(net)):
        for weight in w.weights:
            kind = {"dense": "dense", "conv2d": "conv"}.get(w.layer.type, "vector") if weight == "kernel" else "vector"
            permuted = weight == "kernel" or w.layer.type == "batch_norm"
            out[f"{w.name}/{weight}"] = (kind, orders[k] if permuted else None)
    return out


def to_canonical(spec: Spec, name: str, v: torch.Tensor) -> torch.Tensor:
    """A parameter or buffer (or its gradient, or an optimizer slot) in the canonical layout.
    PT: Linear (out, in) -> (in, out), rows in NHWC flatten order; Conv2d OIHW -> HWIO."""
    kind, order = _layouts(spec.network)[name]
    if kind == "conv":
        return v.permute(2, 3, 1, 0)
    if kind == "dense":
        v = v.T
    if order is None:
        return v
    out = torch.empty_like(v)
    out[torch.as_tensor(order, device=v.device)] = v
    return out


def from_canonical(spec: Spec, name: str, v: np.ndarray) -> np.ndarray:
    """The inverse of to_canonical, on numpy arrays: the canonical layout in PyTorch's."""
    kind, order = _layouts(spec.network)[name]
    if kind == "conv":
        return np.ascontiguousarray(v.transpose(3, 2, 0, 1))
    if order is not None:
        v = v[order]
    return np.ascontiguousarray(v.T) if kind == "dense" else v
