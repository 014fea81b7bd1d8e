"""A network's stack walked layer by layer: each layer's name, its output shape and its weights'
shapes, in Keras's layouts (images (height, width, channels), conv kernels (kh, kw, in, out),
dense kernels (in, out)). Shapes are per example (no batch axis).

Layer names default as Keras names them: the first layer of a type by its type, the next with
`_1`, `_2` (conv2d, conv2d_1, max_pool2d, flatten, dropout, dense, dense_1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from common.layers import BatchNormalization, Conv2D, Dense, Layer, MaxPool2D
from common.spec import Network

BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
MOVING = ("moving_mean", "moving_variance")  # batch norm's statistics: weights without gradients


class StackError(ValueError):
    """A stack whose layers do not fit together; the message names `network.layers[i]`."""


@dataclass(frozen=True)
class Walked:
    """One layer of a stack with what the walk found."""

    index: int
    name: str
    layer: Layer
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weights: dict[str, tuple[int, ...]]   # weight name (without the layer prefix) -> shape


def layer_names(net: Network) -> list[str]:
    """Every layer's name: its own, or the Keras-style default of its type."""
    seen: dict[str, int] = {}
    names = []
    for layer in net.layers:
        k = seen.get(layer.type, 0)
        seen[layer.type] = k + 1
        names.append(layer.name or (layer.type if k == 0 else f"{layer.type}_{k}"))
    return names


def walk(net: Network) -> list[Walked]:
    """Each layer with its name, input and output shapes and weight shapes; StackError naming the
    first layer that does not fit its input (or a name used twice)."""
    names, shape, out = layer_names(net), tuple(net.input_shape), []
    for i, (name, layer) in enumerate(zip(names, net.layers)):
        if name in names[:i]:
            raise StackError(f"network.layers[{i}].name: {name!r} is used by an earlier layer; names must differ")
        out_shape, weights = _fit(layer, shape, f"network.layers[{i}] ({layer.type})")
        out.append(Walked(i, name, layer, shape, out_shape, weights))
        shape = out_shape
    return out


def _fit(layer: Layer, shape: tuple[int, ...], where: str) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    if isinstance(layer, Dense):
        if len(shape) != 1:
            raise StackError(f"{where}: needs a flat input, got shape {shape}; put a flatten layer before it")
        return (layer.units,), {"kernel": (shape[0], layer.units), "bias": (layer.units,)}
    if isinstance(layer, (Conv2D, MaxPool2D)):
        if len(shape) != 3:
            raise StackError(f"{where}: needs (height, width, channels) input, got shape {shape}")
        window = layer.kernel_size if isinstance(layer, Conv2D) else layer.pool_size
        same = isinstance(layer, Conv2D) and layer.padding == "same"
        hw = tuple(_extent(n, k, s, same) for n, k, s in zip(shape[:2], window, layer.strides))
        if min(hw) < 1:
            raise StackError(f"{where}: a {window[0]}x{window[1]} window does not fit its {shape[0]}x{shape[1]} input")
        if isinstance(layer, MaxPool2D):
            return (*hw, shape[2]), {}
        return (*hw, layer.filters), {"kernel": (*layer.kernel_size, shape[2], layer.filters), "bias": (layer.filters,)}
    if layer.type == "flatten":
        return (math.prod(shape),), {}
    if isinstance(layer, BatchNormalization):
        return shape, {w: (shape[-1],) for w in BN_WEIGHTS}
    return shape, {}  # dropout, activation


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """(before, after) zeros along an axis of length n for 'same' padding with window k and stride
    s: total = max((out - 1) s + k - n, 0), total // 2 before and the rest after (TF's and
    PyTorch's placement)."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _extent(n: int, k: int, s: int, same: bool) -> int:
    """Output length along one axis: ceil(n / s) with same padding, floor((n - k) / s) + 1 valid."""
    return -(-n // s) if same else (n - k) // s + 1


def weight_shapes(net: Network) -> dict[str, tuple[int, ...]]:
    """`<layer>/<weight>` -> shape of every weight, in layer order."""
    return {f"{w.name}/{k}": s for w in walk(net) for k, s in w.weights.items()}


def output_shape(net: Network) -> tuple[int, ...]:
    """The network's output shape per example."""
    walked = walk(net)
    return walked[-1].output_shape if walked else tuple(net.input_shape)
