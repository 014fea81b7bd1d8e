"""The layers a network's stack is made of (common.spec.Network), and the initializer of a tensor.

Each layer is a frozen dataclass whose `type` names it in a spec file
(`[[network.layers]]` with `type = "conv2d"`); `name` labels its weights
(`conv2d/kernel`), and an empty name takes the Keras-style default (common.stack).
Canonical layouts are Keras's: a Dense kernel is (in, out), a Conv2D kernel
(kernel height, kernel width, in channels, filters), images (height, width, channels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Union

ActivationName = Literal["linear", "tanh", "sigmoid", "relu", "leaky_relu", "softmax", "log_softmax"]

# The standard deviation of N(0, 1) truncated to [-2, 2] (0.8796...): sqrt(1 - 2 * 2 * pdf(2) / (cdf(2) - cdf(-2))).
TRUNCATION_STDDEV = math.sqrt(1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(math.sqrt(2.0)))


@dataclass(frozen=True)
class Initializer:
    """How one tensor is initialized.

    name:
      uniform         U(low, high)
      glorot_uniform  U(-l, l), l = sqrt(6 / (fan_in + fan_out))
      glorot_normal   N(0, s), s = sqrt(2 / (fan_in + fan_out))
      he_normal       N(0, s), s = sqrt(2 / fan_in)
      he_uniform      U(-l, l), l = sqrt(6 / fan_in)
      zeros, constant(value)
    Fans as Keras computes them: a dense kernel (in, out) has fan_in = in, fan_out = out; a
      conv kernel (kh, kw, in, out) fan_in = kh kw in, fan_out = kh kw out (the kernel area
      counts); a 1-D tensor of length n has fan_in = fan_out = n.
    truncated: for the normal ones, whether samples are redrawn outside
      +-2 standard deviations, with the standard deviation pre-divided by
      TRUNCATION_STDDEV (0.8796) so the truncated distribution keeps variance s^2
      (Keras's he_normal/glorot_normal do this; PyTorch's kaiming_normal_ and
      xavier_normal_ do not truncate).
    """

    name: Literal["uniform", "glorot_uniform", "glorot_normal", "he_normal",
                  "he_uniform", "zeros", "constant"] = "zeros"
    low: float = field(default=-0.05, metadata={"applies": ("uniform",)})
    high: float = field(default=0.05, metadata={"applies": ("uniform",)})
    value: float = field(default=0.0, metadata={"applies": ("constant",)})
    truncated: bool = field(default=True, metadata={"applies": ("glorot_normal", "he_normal")})


_SLOPE = {"range": (0.0, 1.0)}
_PAIR = {"range": (1, 64)}


@dataclass(frozen=True)
class Dense:
    """y = activation(x @ kernel + bias) on a flat input; kernel (in, units)."""

    type: Literal["dense"] = "dense"
    name: str = ""
    units: int = field(default=10, metadata={"range": (1, 16384)})
    activation: ActivationName = "linear"
    leaky_relu_slope: float = field(default=0.01, metadata=_SLOPE)
    kernel_init: Initializer = Initializer("glorot_uniform")
    bias_init: Initializer = Initializer("zeros")


@dataclass(frozen=True)
class Conv2D:
    """A 2-D cross-correlation of (height, width, channels) images, plus bias, then the
    activation; kernel (kh, kw, in, filters). padding: valid (no padding) | same (zeros around,
    the extra row/column at the bottom/right, as both frameworks place it)."""

    type: Literal["conv2d"] = "conv2d"
    name: str = ""
    filters: int = field(default=32, metadata={"range": (1, 4096)})
    kernel_size: tuple[int, int] = field(default=(3, 3), metadata=_PAIR)
    strides: tuple[int, int] = field(default=(1, 1), metadata=_PAIR)
    padding: Literal["valid", "same"] = "valid"
    activation: ActivationName = "linear"
    leaky_relu_slope: float = field(default=0.01, metadata=_SLOPE)
    kernel_init: Initializer = Initializer("glorot_uniform")
    bias_init: Initializer = Initializer("zeros")


@dataclass(frozen=True)
class MaxPool2D:
    """The maximum over each pool_size window, stepping by strides, no padding (valid)."""

    type: Literal["max_pool2d"] = "max_pool2d"
    name: str = ""
    pool_size: tuple[int, int] = field(default=(2, 2), metadata=_PAIR)
    strides: tuple[int, int] = field(default=(2, 2), metadata=_PAIR)


@dataclass(frozen=True)
class Flatten:
    """(height, width, channels) -> height * width * channels, in that (NHWC, Keras) order."""

    type: Literal["flatten"] = "flatten"
    name: str = ""


@dataclass(frozen=True)
class Dropout:
    """In training, each input is zeroed with probability `rate` and the rest scaled by
    1 / (1 - rate) (inverted dropout, both frameworks); in inference, the identity."""

    type: Literal["dropout"] = "dropout"
    name: str = ""
    rate: float = field(default=0.5, metadata={"range": (0.0, 1.0)})


@dataclass(frozen=True)
class BatchNormalization:
    """Batch normalization over the last axis: see common.spec.BatchNorm for momentum, epsilon
    and running_variance (the same fields, the same meaning)."""

    type: Literal["batch_norm"] = "batch_norm"
    name: str = ""
    momentum: float = field(default=0.99, metadata={"range": (0.0, 1.0)})
    epsilon: float = field(default=1e-3, metadata={"range": (0.0, None), "open": True})
    running_variance: Literal["biased", "unbiased"] = "biased"


@dataclass(frozen=True)
class Activation:
    """activation(x), elementwise (softmax: over the last axis)."""

    type: Literal["activation"] = "activation"
    name: str = ""
    activation: ActivationName = "linear"
    leaky_relu_slope: float = field(default=0.01, metadata=_SLOPE)


Layer = Union[Dense, Conv2D, MaxPool2D, Flatten, Dropout, BatchNormalization, Activation]
LAYERS = {cls.type: cls for cls in (Dense, Conv2D, MaxPool2D, Flatten, Dropout,  # type: ignore[attr-defined]
                                    BatchNormalization, Activation)}
