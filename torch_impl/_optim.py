"""The book optimizer's step on given tensors, and its state as a flat list of tensors: what
torch_impl._step traces into the fast path's step (PyTorch only: TF's compiled epoch calls
Keras's `apply` on the optimizer's own variables).

torch.optim's forms run their class's own `step()`: a new instance with the book optimizer's
settings, over the traced tensors, its state dict filled with them. The spec rule runs
torch_impl.optimizers' `update` for each weight, after counting the step.
"""
from __future__ import annotations

import torch

from common import canonical
from torch_impl.optimizers import (SpecOptimizer, _rule_step, _state_keys, get_optimizer_state,
                                   set_optimizer_state)


def _keys(optimizer: torch.optim.Optimizer) -> list[str]:
    """torch.optim's state keys of each parameter, in `state_tensors` order."""
    return [key for _, key in _state_keys(optimizer.spec)]


def state_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every tensor of the model's optimizer state, in one order: the spec rule's slots
    (slot-major), then its step count; torch.optim's per parameter, in `_keys` order (made
    now, as the fresh state the first step would start from, when no step ran yet)."""
    optimizer = model.optimizer
    params = optimizer.param_groups[0]["params"]
    if isinstance(optimizer, SpecOptimizer):
        slots = canonical.slot_names(optimizer.spec)
        return [optimizer.state[p][k] for k in slots for p in params] + [optimizer.t]
    keys = _keys(optimizer)
    if any(k not in optimizer.state[p] for p in params for k in keys):
        set_optimizer_state(model, optimizer.spec, get_optimizer_state(model, optimizer.spec))
    return [optimizer.state[p][k] for p in params for k in keys]


def step(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], grads: list[torch.Tensor],
         state: list[torch.Tensor], scalars: dict[str, torch.Tensor], differentiable: bool = False) -> None:
    """One step of `optimizer`'s rule on the given tensors, in place: `state` as `state_tensors`
    lists it, `scalars` the step's `_step_scalars` (the spec rule's). differentiable: torch.optim's
    differentiable form (the same formula, its step-count arithmetic on tensors)."""
    if isinstance(optimizer, SpecOptimizer):  # what SpecOptimizer.step does, on these tensors
        slots, n = canonical.slot_names(optimizer.spec), len(params)
        _rule_step(optimizer.spec, state[-1], params, grads,
                   [{k: state[j * n + i] for j, k in enumerate(slots)} for i in range(n)], scalars)
        return
    # PT: foreach=False: one weight at a time, as the book's optimizer runs on the CPU
    twin = type(optimizer)(params, **{**optimizer.defaults, "foreach": False, "differentiable": differentiable})
    keys, counts = _keys(optimizer), []
    for i, (p, g) in enumerate(zip(params, grads)):
        twin.state[p] = dict(zip(keys, state[i * len(keys):(i + 1) * len(keys)]))
        if differentiable and "step" in twin.state[p]:  # PT: its step-count arithmetic in float64, as the book's
            counts.append((twin.state[p]["step"], twin.state[p]["step"].to(torch.float64)))  # Python floats
            twin.state[p]["step"] = counts[-1][1]
        p.grad = g
    twin.step()
    for count, wide in counts:
        count.copy_(wide)
