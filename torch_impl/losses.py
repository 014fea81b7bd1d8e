"""The spec's loss in PyTorch: output activation and formula written out."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from common.spec import Spec

# --- section: output_activation ---


def output_activation(spec: Spec, z: torch.Tensor) -> torch.Tensor:
    """Probabilities (or outputs) from the output layer's pre-activation z."""
    return {"sigmoid": torch.sigmoid, "softmax": lambda z: torch.softmax(z, dim=-1),
            "linear": lambda z: z, "log_softmax": lambda z: F.log_softmax(z, dim=-1)}[spec.network.output_activation](z)


# --- section: per_example_loss ---


def per_example_loss(spec: Spec, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Loss of each example, from one-hot targets t and pre-activations z."""
    loss, p = spec.loss, output_activation(spec, z)
    if loss.name == "mse":
        return torch.mean(torch.square(t - p), dim=-1)
    if loss.name == "nll":  # PT: PyTorch's example: F.nll_loss(F.log_softmax(z)), on the labels
        return F.nll_loss(p, t.argmax(-1), reduction="none")
    eps = loss.epsilon
    if loss.name == "binary_crossentropy":
        if loss.formula == "logits":
            return torch.mean(F.binary_cross_entropy_with_logits(z, t, reduction="none"), dim=-1)
        p = torch.clamp(p, eps, 1.0 - eps)  # PT: BCELoss would clamp log(p) at -100 instead
        return -torch.mean(t * torch.log(p) + (1.0 - t) * torch.log(1.0 - p), dim=-1)
    if loss.formula == "logits":
        return F.cross_entropy(z, t, reduction="none")
    p = torch.clamp(p / torch.sum(p, dim=-1, keepdim=True), eps, 1.0 - eps)
    return -torch.sum(t * torch.log(p), dim=-1)


# --- section: loss_function ---


class SpecLoss(torch.nn.Module):
    """The spec's loss averaged over the batch."""

    def __init__(self, spec: Spec):
        super().__init__()
        self.spec = spec

    def forward(self, y_true, y_pred):
        return torch.mean(per_example_loss(self.spec, y_true, y_pred))


def one_hot(spec: Spec, y) -> torch.Tensor:
    """One-hot targets in the spec's dtype from integer labels."""
    y = torch.as_tensor(y, dtype=torch.int64)
    return F.one_hot(y, spec.network.output_units).to(getattr(torch, spec.training.dtype))
