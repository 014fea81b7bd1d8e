"""The spec: one frozen description of the chapter-5 digit network and its training.

Every number that decides a result lives here. The TensorFlow and PyTorch
implementations map each field explicitly onto their framework; where the two
frameworks' defaults differ, the field's docstring names the formula the spec
means. Canonical conventions (the ones the book's Keras code uses) are the
defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Union

Activation = Literal["tanh", "sigmoid", "relu", "leaky_relu"]
OutputActivation = Literal["sigmoid", "softmax", "linear"]
DType = Literal["float32", "float64"]

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


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalization of the hidden layer.

    mode: none | before_activation (dense -> BN -> activation) |
      after_activation (dense -> activation -> BN).
    momentum: moving = momentum * moving + (1 - momentum) * batch_statistic
      (the Keras convention; PyTorch's `momentum` argument is 1 - this value).
    epsilon: added to the variance inside the square root (Keras 1e-3,
      PyTorch 1e-5 by default).
    running_variance: which batch variance feeds the moving variance:
      biased (divide by n, Keras) or unbiased (divide by n - 1, PyTorch). The
      normalization itself always uses the biased batch variance.
    gamma starts at ones, beta at zeros, the moving mean at zeros and the
    moving variance at ones (both frameworks agree).
    """

    mode: Literal["none", "before_activation", "after_activation"] = "none"
    momentum: float = field(default=0.99, metadata={"range": (0.0, 1.0)})
    epsilon: float = field(default=1e-3, metadata={"range": (0.0, None), "open": True})
    running_variance: Literal["biased", "unbiased"] = "biased"


@dataclass(frozen=True)
class Network:
    """784 inputs (28x28 flattened) -> dense hidden layer -> dense output layer."""

    hidden_units: int = field(default=25, metadata={"range": (1, 4096)})
    hidden_activation: Activation = "tanh"
    leaky_relu_slope: float = field(default=0.01, metadata={"range": (0.0, 1.0)})
    output_units: int = field(default=10, metadata={"range": (10, 10)})
    output_activation: OutputActivation = "sigmoid"
    hidden_kernel_init: Initializer = Initializer("uniform", -0.1, 0.1)
    hidden_bias_init: Initializer = Initializer("zeros")
    output_kernel_init: Initializer = Initializer("uniform", -0.1, 0.1)
    output_bias_init: Initializer = Initializer("zeros")
    batch_norm: BatchNorm = BatchNorm()

    @property
    def input_units(self) -> int:
        return 28 * 28


@dataclass(frozen=True)
class Loss:
    """The loss, averaged over the examples of a batch.

    mse: mean over the 10 outputs of (y - p)^2.
    binary_crossentropy: mean over the 10 outputs of
      -(y log p + (1 - y) log(1 - p)).
    categorical_crossentropy: -sum over the 10 outputs of y log p.
    formula (cross-entropies only):
      logits   computed from the output layer's pre-activation z with a
               log-sum-exp / softplus form; exact, no clipping (what Keras 3
               does when the output layer is a sigmoid/softmax, and what
               torch's *WithLogits losses do).
      clipped  computed on probabilities p clipped to [epsilon, 1 - epsilon]
               (Keras's formula for plain probabilities; for categorical,
               p is first divided by its sum).
    epsilon: the clipping epsilon of `clipped` (Keras's backend epsilon 1e-7;
      torch's BCELoss clamps log(p) at -100 instead).
    """

    name: Literal["mse", "binary_crossentropy", "categorical_crossentropy"] = "mse"
    formula: Literal["logits", "clipped"] = "logits"
    epsilon: float = field(default=1e-7, metadata={"range": (0.0, 0.5), "open": True})


@dataclass(frozen=True)
class SGD:
    """velocity = momentum * velocity - lr * g;  w += velocity  (Keras form).
    nesterov: w += momentum * velocity - lr * g.
    With a constant learning rate this equals PyTorch's
    b = momentum * b + g; w -= lr * b (b = -velocity / lr)."""

    name: Literal["sgd"] = "sgd"
    learning_rate: float = field(default=0.01, metadata={"range": (0.0, None), "open": True})
    momentum: float = field(default=0.0, metadata={"range": (0.0, 1.0)})
    nesterov: bool = False


@dataclass(frozen=True)
class Adagrad:
    """acc += g^2;  w -= lr * g / sqrt(acc + eps)    (inside_sqrt, Keras)
                    w -= lr * g / (sqrt(acc) + eps)  (outside_sqrt, PyTorch)
    acc starts at initial_accumulator (Keras 0.1, PyTorch 0)."""

    name: Literal["adagrad"] = "adagrad"
    learning_rate: float = field(default=0.01, metadata={"range": (0.0, None), "open": True})
    initial_accumulator: float = field(default=0.1, metadata={"range": (0.0, None)})
    epsilon: float = field(default=1e-7, metadata={"range": (0.0, None), "open": True})
    epsilon_placement: Literal["inside_sqrt", "outside_sqrt"] = "inside_sqrt"


@dataclass(frozen=True)
class RMSprop:
    """v = rho * v + (1 - rho) * g^2; centered: a = rho * a + (1 - rho) * g and
    v' = v - a^2, else v' = v.
      w -= lr * g / sqrt(v' + eps)    (inside_sqrt, Keras)
      w -= lr * g / (sqrt(v') + eps)  (outside_sqrt, PyTorch)
    Keras's rho defaults to 0.9, PyTorch's alpha to 0.99."""

    name: Literal["rmsprop"] = "rmsprop"
    learning_rate: float = field(default=0.001, metadata={"range": (0.0, None), "open": True})
    rho: float = field(default=0.9, metadata={"range": (0.0, 1.0)})
    epsilon: float = field(default=1e-7, metadata={"range": (0.0, None), "open": True})
    centered: bool = False
    epsilon_placement: Literal["inside_sqrt", "outside_sqrt"] = "inside_sqrt"


@dataclass(frozen=True)
class Adam:
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  at step t:
      keras: w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
             (epsilon added before bias correction: "epsilon hat")
      paper: w -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t),
             v_hat = v / (1 - b2^t) (Kingma & Ba, Algorithm 1; PyTorch)
    Keras's epsilon defaults to 1e-7, PyTorch's to 1e-8."""

    name: Literal["adam"] = "adam"
    learning_rate: float = field(default=0.001, metadata={"range": (0.0, None), "open": True})
    beta_1: float = field(default=0.9, metadata={"range": (0.0, 1.0)})
    beta_2: float = field(default=0.999, metadata={"range": (0.0, 1.0)})
    epsilon: float = field(default=1e-7, metadata={"range": (0.0, None), "open": True})
    epsilon_convention: Literal["keras", "paper"] = "keras"


Optimizer = Union[SGD, Adagrad, RMSprop, Adam]
OPTIMIZERS = {cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam)}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Training:
    """How the network is trained and evaluated.

    shuffle: a fresh permutation each epoch, drawn from (seed, epoch) by
      common.data.epoch_permutation, the same in both frameworks.
    standardize: x = (x - mean) / std with the training set's scalar mean
      and standard deviation (as in the chapter).
    evaluation: test (the 10,000 test images) | validation_split (the last
      `validation_split` fraction of the training set, as Keras does).
    k_folds: 0 for none, else k-fold cross-validation over the training set.
    """

    batch_size: int = field(default=1, metadata={"range": (1, 60000)})
    epochs: int = field(default=20, metadata={"range": (1, 10000)})
    shuffle: bool = True
    seed: int = field(default=7, metadata={"range": (0, 2**32 - 1)})
    standardize: bool = True
    dtype: DType = "float32"
    evaluation: Literal["test", "validation_split"] = "test"
    validation_split: float = field(default=0.1, metadata={"range": (0.0, 1.0), "open": True})
    k_folds: int = field(default=0, metadata={"range": (0, 100)})


@dataclass(frozen=True)
class Spec:
    """The whole experiment: network, loss, optimizer and training."""

    name: str = "custom"
    description: str = ""
    network: Network = Network()
    loss: Loss = Loss()
    optimizer: Optimizer = SGD()
    training: Training = Training()
