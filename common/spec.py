"""The spec: one frozen description of the chapter-5 digit network and its training.

Every number that decides a result lives here. The TensorFlow and PyTorch
implementations map each field explicitly onto their framework; where the two
frameworks' defaults differ, the field's docstring names the formula the spec
means. Canonical conventions (the ones the book's Keras code uses) are the
defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Union

from common.layers import (TRUNCATION_STDDEV, Activation as ActivationLayer, BatchNormalization, Dense,  # noqa: F401
                           Initializer, Layer)

Activation = Literal["tanh", "sigmoid", "relu", "leaky_relu"]
OutputActivation = Literal["sigmoid", "softmax", "linear", "log_softmax"]
DType = Literal["float32", "float64"]


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
class ChapterMLP:
    """The chapter's network in its short form: 784 inputs -> dense hidden layer [with batch
    norm] -> dense output layer. Spec files of the old form give these keys under [network];
    they load as the layer stack `layers()` builds, and dotted paths such as
    `network.hidden_units` (config.replace, the field probes) address them."""

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

    def layers(self) -> tuple[Layer, ...]:
        """hidden (dense) [-> bn [-> activation]] -> output (dense): batch norm before the
        activation leaves the hidden dense layer linear and adds an activation layer."""
        bn, act, slope = self.batch_norm, self.hidden_activation, self.leaky_relu_slope
        before = bn.mode == "before_activation"
        stack: list[Layer] = [Dense(name="hidden", units=self.hidden_units, activation="linear" if before else act,
                                    leaky_relu_slope=0.01 if before else slope,
                                    kernel_init=self.hidden_kernel_init, bias_init=self.hidden_bias_init)]
        if bn.mode != "none":
            stack.append(BatchNormalization(name="bn", momentum=bn.momentum, epsilon=bn.epsilon,
                                            running_variance=bn.running_variance))
        if before:
            stack.append(ActivationLayer(name="activation", activation=act, leaky_relu_slope=slope))
        return (*stack, Dense(name="output", units=self.output_units, activation=self.output_activation,
                              kernel_init=self.output_kernel_init, bias_init=self.output_bias_init))

    def network(self) -> Network:
        """The Network of this short form: 784 inputs and `layers()`."""
        return Network(layers=self.layers())

    @staticmethod
    def of(layers: tuple[Layer, ...]) -> ChapterMLP | None:
        """The short form of a stack that `layers()` builds, or None for any other stack."""
        names = [layer.name for layer in layers]
        modes = {("hidden", "output"): "none", ("hidden", "bn", "activation", "output"): "before_activation",
                 ("hidden", "bn", "output"): "after_activation"}
        if tuple(names) not in modes or not isinstance(layers[0], Dense) or not isinstance(layers[-1], Dense):
            return None
        mode, (hidden, out) = modes[tuple(names)], (layers[0], layers[-1])
        carrier = layers[2] if mode == "before_activation" else hidden  # the layer with the hidden activation
        bn = layers[1] if mode != "none" else None
        try:
            mlp = ChapterMLP(hidden.units, carrier.activation, carrier.leaky_relu_slope, out.units,
                             out.activation, hidden.kernel_init, hidden.bias_init, out.kernel_init, out.bias_init,
                             BatchNorm(mode, bn.momentum, bn.epsilon, bn.running_variance) if bn else BatchNorm())
        except AttributeError:  # a layer of another type where the short form has a dense/bn/activation
            return None
        return mlp if mlp.layers() == tuple(layers) else None


# The chapter MLP's fields, readable on any Network whose stack is in the short form.
MLP_FIELDS = tuple(ChapterMLP.__dataclass_fields__)


@dataclass(frozen=True)
class Network:
    """An input shape and an ordered stack of layers (common.layers), in Keras's layouts:
    images (height, width, channels), flat inputs (784,). The default is the chapter's MLP
    (ChapterMLP().layers()); the MLP's short-form fields (hidden_units, batch_norm, ...) read
    through `mlp`, and raise ValueError on any other stack."""

    input_shape: tuple[int, ...] = field(default=(784,), metadata={"range": (1, 4096)})
    layers: tuple[Layer, ...] = ChapterMLP().layers()

    @cached_property
    def chapter_mlp(self) -> ChapterMLP | None:
        """The stack's short form, or None where it is not the chapter's MLP on flat inputs."""
        return ChapterMLP.of(self.layers) if len(self.input_shape) == 1 else None

    @property
    def mlp(self) -> ChapterMLP:
        """The short form; ValueError naming the stack where it is not the chapter's MLP."""
        if self.chapter_mlp is None:
            kinds = " -> ".join(layer.type for layer in self.layers)
            raise ValueError(f"network: this part of twinbench runs only the chapter's MLP so far (flat inputs: hidden dense [bn"
                             f" [activation]] output dense, so named); this network is {kinds}")
        return self.chapter_mlp

    @property
    def input_units(self) -> int:
        """The chapter MLP's flat inputs (784: 28 x 28 pixels)."""
        return self.mlp and self.input_shape[0]

    @property
    def output_units(self) -> int:
        """MNIST's 10 classes: validation requires the last layer to give 10 outputs."""
        return 10

    @property
    def output_activation(self) -> str:
        """The last layer's activation (linear where the last layer has none)."""
        return getattr(self.layers[-1], "activation", "linear")


def _mlp_field(name: str) -> property:
    return property(lambda self: getattr(self.mlp, name), doc=f"The chapter MLP's {name} (Network.mlp).")


for _name in MLP_FIELDS:
    if _name not in ("output_activation", "output_units"):
        setattr(Network, _name, _mlp_field(_name))


@dataclass(frozen=True)
class Loss:
    """The loss, averaged over the examples of a batch.

    mse: mean over the 10 outputs of (y - p)^2.
    binary_crossentropy: mean over the 10 outputs of
      -(y log p + (1 - y) log(1 - p)).
    categorical_crossentropy: -sum over the 10 outputs of y log p.
    nll: -sum over the 10 outputs of y * o, the outputs o being log-probabilities (a
      log_softmax output: PyTorch's F.nll_loss after F.log_softmax). The same function of the
      logits as categorical_crossentropy with formula logits; `formula` does not apply.
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

    name: Literal["mse", "binary_crossentropy", "categorical_crossentropy", "nll"] = "mse"
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


@dataclass(frozen=True)
class Adadelta:
    """acc_g = rho acc_g + (1 - rho) g^2;  delta = sqrt(acc_d + eps) / sqrt(acc_g + eps) * g;
    acc_d = rho acc_d + (1 - rho) delta^2;  w -= lr * delta
    (Zeiler's rule with a learning rate; Keras and PyTorch both compute this form.) Keras's
    defaults: lr 0.001, rho 0.95, epsilon 1e-7; PyTorch's: lr 1.0, rho 0.9, epsilon 1e-6."""

    name: Literal["adadelta"] = "adadelta"
    learning_rate: float = field(default=0.001, metadata={"range": (0.0, None), "open": True})
    rho: float = field(default=0.95, metadata={"range": (0.0, 1.0)})
    epsilon: float = field(default=1e-7, metadata={"range": (0.0, None), "open": True})


Optimizer = Union[SGD, Adagrad, RMSprop, Adam, Adadelta]
OPTIMIZERS = {cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam, Adadelta)}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Schedule:
    """The learning rate of epoch e (0-based): optimizer.learning_rate * gamma ** (e // step_epochs),
    constant within an epoch; gamma 1 (the default) keeps it constant. PyTorch's
    StepLR(step_size=step_epochs, gamma) stepped after each epoch computes this (to rounding: it
    multiplies by gamma once a period, the power taken here may differ in the last bit); so does Keras's
    ExponentialDecay(decay_steps=step_epochs x the epoch's steps, decay_rate=gamma, staircase=True),
    which counts optimizer steps."""

    step_epochs: int = field(default=1, metadata={"range": (1, 10000)})
    gamma: float = field(default=1.0, metadata={"range": (0.0, 1.0), "open": True})

    def rate(self, learning_rate: float, epoch: int) -> float:
        """The learning rate of epoch `epoch` (0-based)."""
        return learning_rate * self.gamma ** (epoch // self.step_epochs)


@dataclass(frozen=True)
class Training:
    """How the network is trained and evaluated.

    shuffle: a fresh permutation each epoch, drawn from (seed, epoch) by
      common.data.epoch_permutation, the same in both frameworks.
    input_divisor: the raw 0..255 pixels are divided by this first (255 in
      both frameworks' convnet examples: Keras's x / 255, torchvision's ToTensor).
    standardize: then x = (x - mean) / std with the training set's scalar mean
      and standard deviation (as in the chapter); else x = (x - input_mean) /
      input_std, given (PyTorch's example: Normalize((0.1307,), (0.3081,))).
    evaluation: test (the 10,000 test images) | validation_split (the last
      `validation_split` fraction of the training set, as Keras does).
    k_folds: 0 for none, else k-fold cross-validation over the training set.
    schedule: the learning rate's per-epoch step decay (Schedule).
    """

    batch_size: int = field(default=1, metadata={"range": (1, 60000)})
    epochs: int = field(default=20, metadata={"range": (1, 10000)})
    shuffle: bool = True
    seed: int = field(default=7, metadata={"range": (0, 2**32 - 1)})
    input_divisor: float = field(default=1.0, metadata={"range": (0.0, None), "open": True})
    standardize: bool = True
    input_mean: float = 0.0
    input_std: float = field(default=1.0, metadata={"range": (0.0, None), "open": True})
    dtype: DType = "float32"
    evaluation: Literal["test", "validation_split"] = "test"
    validation_split: float = field(default=0.1, metadata={"range": (0.0, 1.0), "open": True})
    k_folds: int = field(default=0, metadata={"range": (0, 100)})
    schedule: Schedule = Schedule()


@dataclass(frozen=True)
class Spec:
    """The whole experiment: network, loss, optimizer and training."""

    name: str = "custom"
    description: str = ""
    network: Network = Network()
    loss: Loss = Loss()
    optimizer: Optimizer = SGD()
    training: Training = Training()
