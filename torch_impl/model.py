"""The chapter-5 network in PyTorch: build it from the spec, move weights in and out."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from common import canonical
from common.config import validate
from common.spec import TRUNCATION_STDDEV, Initializer, Spec
from torch_impl.optimizers import make_optimizer
from torch_impl.stack import activation, from_canonical, stack_layers, to_canonical

# --- section: device ---


def device_name(device: str) -> str:
    """The framework's name for 'cpu' or 'cuda'; a missing GPU is an error, never a fall-back."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but PyTorch sees no GPU")
    return device


# --- section: initializers ---


def make_initializer(init: Initializer, seed: int):
    """The spec's initializer as a function of a tensor (filled in place), every parameter passed."""
    gen = torch.Generator().manual_seed(seed)

    def fans(w):  # PT: nn.Linear's weight is (out, in), nn.Conv2d's (out, in, kh, kw): the kernel area counts
        area = math.prod(w.shape[2:])
        return (w.shape[1] * area, w.shape[0] * area) if w.dim() > 1 else (w.shape[0], w.shape[0])

    def normal(w, std):
        if not init.truncated:  # PT: kaiming_normal_/xavier_normal_ do not truncate
            return nn.init.normal_(w, 0.0, std, generator=gen)
        std = std / TRUNCATION_STDDEV
        return nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std, generator=gen)

    def uniform(w, limit):
        return nn.init.uniform_(w, -limit, limit, generator=gen)

    return {
        "uniform": lambda w: nn.init.uniform_(w, init.low, init.high, generator=gen),
        "glorot_uniform": lambda w: uniform(w, math.sqrt(6.0 / sum(fans(w)))),
        "glorot_normal": lambda w: normal(w, math.sqrt(2.0 / sum(fans(w)))),
        "he_uniform": lambda w: uniform(w, math.sqrt(6.0 / fans(w)[0])),
        "he_normal": lambda w: normal(w, math.sqrt(2.0 / fans(w)[0])),
        "zeros": lambda w: nn.init.zeros_(w),
        "constant": lambda w: nn.init.constant_(w, init.value),
    }[init.name]


# --- section: layers ---


class BiasedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose running variance takes the biased batch variance.

    PT: PyTorch feeds the unbiased (divide by n - 1) variance; this feeds the biased one."""

    def forward(self, inputs):
        return _biased_forward(self, inputs, super().forward)


class BiasedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d (NCHW images, each channel over N, H, W) with BiasedBatchNorm1d's running variance."""

    def forward(self, inputs):
        return _biased_forward(self, inputs, super().forward)


def _biased_forward(bn, inputs, inference):
    if not bn.training:
        return inference(inputs)
    dims = 0 if inputs.dim() == 2 else [0, *range(2, inputs.dim())]
    with torch.no_grad():
        bn.running_mean.lerp_(inputs.mean(dim=dims), bn.momentum)
        bn.running_var.lerp_(inputs.var(dim=dims, unbiased=False), bn.momentum)
    return F.batch_norm(inputs, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)


def bn_class(layer, features: int, ndim: int) -> nn.Module:
    """PyTorch's batch norm of a spec batch_norm layer over `features` channels of ndim-D inputs."""
    own, biased = (nn.BatchNorm1d, BiasedBatchNorm1d) if ndim == 1 else (nn.BatchNorm2d, BiasedBatchNorm2d)
    # PT: PyTorch's momentum is the weight of the new batch statistic: 1 - the spec's
    return (own if layer.running_variance == "unbiased" else biased)(features, eps=layer.epsilon,
                                                                      momentum=1.0 - layer.momentum)


def activation_layer(spec: Spec) -> nn.Module:
    net = spec.network  # PT: leaky_relu with the spec's slope (torch_impl.stack.activation)
    return activation(net.hidden_activation, net.leaky_relu_slope)


def batch_norm_layer(spec: Spec) -> nn.Module:
    return bn_class(spec.network.batch_norm, spec.network.hidden_units, 1)


# --- section: build_model ---


def build_model(spec: Spec, seed: int | None = None, device: str = "cpu") -> nn.Sequential:
    """The spec's network, with the spec's optimizer attached as `model.optimizer`.

    The output layer is linear: it returns the pre-activation z, and the spec's
    output activation is applied inside the loss (torch_impl.losses), as the
    Keras side does.
    """
    validate(spec)
    seed = spec.training.seed if seed is None else seed
    net = spec.network
    if net.chapter_mlp is None:
        built: list[nn.Module] = []  # the masks' step: the optimizer steps the training loop counted
        model = nn.Sequential(OrderedDict(stack_layers(spec, seed, make_initializer, lambda: built[0].steps_taken,
                                                       bn_class)))
        built.append(model)
        return _placed(model, spec, device)

    def dense(n_in, units, k, b, s):
        layer = nn.Linear(n_in, units)
        with torch.no_grad():
            make_initializer(k, s)(layer.weight), make_initializer(b, s + 1)(layer.bias)
        return layer

    hidden = [("hidden", dense(net.input_units, net.hidden_units, net.hidden_kernel_init,
                               net.hidden_bias_init, seed))]
    if net.batch_norm.mode == "before_activation":
        hidden += [("bn", batch_norm_layer(spec)), ("activation", activation_layer(spec))]
    elif net.batch_norm.mode == "after_activation":
        hidden += [("activation", activation_layer(spec)), ("bn", batch_norm_layer(spec))]
    else:
        hidden += [("activation", activation_layer(spec))]
    model = nn.Sequential(OrderedDict([("flatten", nn.Flatten()), *hidden,
                                ("output", dense(net.hidden_units, net.output_units, net.output_kernel_init,
                                                 net.output_bias_init, seed + 2))]))
    return _placed(model, spec, device)


def _placed(model: nn.Sequential, spec: Spec, device: str) -> nn.Sequential:
    """The model on its device in the spec's dtype, with its optimizer, spec and step count."""
    model.to(device=device_name(device), dtype=getattr(torch, spec.training.dtype))
    model.spec, model.steps_taken = spec, 0
    trainable = canonical.trainable_names(spec)
    model.optimizer = make_optimizer(spec, {n: v for n, v in _variables(model).items() if n in trainable})
    model.device = device
    return model


# --- section: get_weights ---


def _variables(model: nn.Sequential) -> dict[str, torch.Tensor]:
    """Canonical name -> tensor, in PyTorch's layout (torch_impl.stack.to_canonical maps it)."""
    names = {"weight": "kernel", "bias": "bias", "running_mean": "moving_mean", "running_var": "moving_variance"}
    bn = {"weight": "gamma", "bias": "beta"}
    out = {}
    for layer, module in model.named_children():
        norm = isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d))
        for name, v in [*module.named_parameters(), *module.named_buffers()]:
            if name != "num_batches_tracked":
                out[f"{layer}/{(bn if norm else {}).get(name, names[name])}"] = v
    return out


def get_weights(model: nn.Sequential) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout (numpy, Keras's layouts)."""
    return {name: to_canonical(model.spec, name, v.detach()).cpu().numpy().copy()
            for name, v in _variables(model).items()}


# --- section: set_weights ---


def set_weights(model: nn.Sequential, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights (exactly: same bits in the model's dtype); nothing changes
    unless every name and shape fits."""
    variables = _variables(model)
    canonical.check_shapes(weights, {name: tuple(to_canonical(model.spec, name, v).shape)
                                     for name, v in variables.items()})
    with torch.no_grad():
        for name, v in variables.items():  # PT: each tensor mapped from Keras's layout (torch_impl.stack)
            v.copy_(torch.as_tensor(from_canonical(model.spec, name, np.asarray(weights[name])), dtype=v.dtype))
