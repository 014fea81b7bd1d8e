"""Gradients, one training step, evaluation and the book's DataLoader loop in PyTorch."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from common import canonical, interrupts
from common.epochs import fit_epochs
from common.spec import Spec
from torch_impl.losses import SpecLoss, one_hot
from torch_impl.model import device_name, get_weights, set_weights
from torch_impl.optimizers import use_schedule
from torch_impl.stack import as_batch, to_canonical

# --- section: inputs ---


def as_inputs(spec: Spec, x: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """Images (N, 28, 28) in the spec's dtype from (N, 28, 28) or (N, 784); for any other stack
    (N, *input_shape) with images NCHW, from NHWC."""
    x = as_batch(spec, x) if spec.network.chapter_mlp is None else np.asarray(x, spec.training.dtype).reshape(-1, 28, 28)
    return torch.as_tensor(x, device=device_name(device))


# --- section: loss_and_gradients ---


def loss_and_gradients(model: torch.nn.Module, spec: Spec, x: np.ndarray, y: np.ndarray
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and canonical gradients on one batch in training mode; the weights,
    batch-norm moving statistics included, are left unchanged."""
    moving = {k: v for k, v in get_weights(model).items() if canonical.is_moving(k)}
    model.train()
    model.zero_grad()
    loss = SpecLoss(spec)(one_hot(spec, y).to(model.device), model(as_inputs(spec, x, model.device)))
    loss.backward()
    if moving:
        set_weights(model, {**get_weights(model), **moving})
    names = canonical.trainable_names(spec)  # PT: parameters() are in layer order
    grads = [to_canonical(spec, n, p.grad) for n, p in zip(names, model.parameters())]
    return loss.item(), {n: g.detach().cpu().numpy().copy() for n, g in zip(names, grads)}


# --- section: train_step ---


def train_batch(model: torch.nn.Module, spec: Spec, xb: torch.Tensor, tb: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the book's optimizer on a batch of tensors, the book's four lines (zero the
    gradients, forward, backward, update): the batch's mean loss and the outputs before the update."""
    model.optimizer.zero_grad()
    z = model(xb)
    loss = SpecLoss(spec)(tb, z)
    loss.backward()
    model.optimizer.step()
    model.steps_taken += 1  # PT: the shared dropout masks' step (TF reads its optimizer's iterations)
    return loss, z.detach()


def train_step(model: torch.nn.Module, spec: Spec, x: np.ndarray, y: np.ndarray) -> float:
    """One optimizer step on one batch, the way `fit` takes it; returns the batch loss."""
    model.train()
    loss, _ = train_batch(model, spec, as_inputs(spec, x, model.device), one_hot(spec, y).to(model.device))
    return loss.item()


# --- section: evaluate ---


@torch.no_grad()
def evaluate(model: torch.nn.Module, spec: Spec, x: np.ndarray, y: np.ndarray,
             batch_size: int = 1000) -> tuple[float, float]:
    """Loss and accuracy in inference mode (batch-norm moving statistics)."""
    model.eval()
    x, t = as_inputs(spec, x, model.device), one_hot(spec, y).to(model.device)
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        z = model(x[i:i + batch_size])
        loss_sum += SpecLoss(spec)(t[i:i + batch_size], z).item() * len(z)
        correct += (z.argmax(-1) == t[i:i + batch_size].argmax(-1)).sum().item()
    return loss_sum / len(x), correct / len(x)


# --- section: fit ---


def fit(model: torch.nn.Module, spec: Spec, data: tuple, epochs: int | None = None, initial_epoch: int = 0,
        on_epoch: Callable[[dict], None] | None = None, progress=None) -> list[dict]:
    """Train with a DataLoader loop, one pass per epoch on the epoch's shared shuffle order.

    data: (x_train, y_train, x_eval, y_eval); epochs run from initial_epoch to `epochs`
    (the spec's by default), as Keras counts them. Returns one dict per epoch with
    epoch, loss, accuracy (running means over the epoch, as Keras reports them),
    val_loss, val_accuracy and seconds (training time of the epoch): common.epochs.
    """
    x, y, x_eval, y_eval = data
    dataset = TensorDataset(as_inputs(spec, x, model.device), one_hot(spec, y).to(model.device))
    scheduler = use_schedule(model, spec, len(x), initial_epoch)  # PT: StepLR, stepped after each epoch

    def train_epoch(order: np.ndarray, bar) -> tuple[float, float]:
        # PT: sampler= the shared order instead of shuffle=True, so both frameworks see the same batches;
        # the last, smaller batch is kept, as Keras's fit keeps it
        loader = DataLoader(dataset, batch_size=spec.training.batch_size, sampler=order.tolist(), drop_last=False)
        loss_sum, correct = 0.0, 0
        model.train()
        for xb, tb in loader:
            interrupts.check()  # a Ctrl-C stops between batches (common.interrupts)
            loss, z = train_batch(model, spec, xb, tb)
            # PT: running loss and accuracy over the epoch, as Keras's fit reports them
            loss_sum += loss.item() * len(xb)
            correct += (z.argmax(-1) == tb.argmax(-1)).sum().item()
            bar.update(1) if bar else None
        scheduler.step() if scheduler else None
        return loss_sum / len(x), correct / len(x)
    return fit_epochs(spec, len(x), train_epoch, lambda: evaluate(model, spec, x_eval, y_eval), epochs,
                      initial_epoch, on_epoch, progress)
