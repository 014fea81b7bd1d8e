"""The spec's optimizer in PyTorch: built-ins where their formula is the spec's."""
from __future__ import annotations

import numpy as np
import torch

from common import canonical
from common.spec import Spec

# --- section: custom_optimizers ---


class KerasAdam(torch.optim.Adam):
    """PT: PyTorch's Adam is Kingma & Ba's form; this adds epsilon before bias correction (Keras's)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for w in (p for p in group["params"] if p.grad is not None):
                s, g = self.state[w], w.grad
                if not s:
                    s["step"] = torch.tensor(0.0, dtype=torch.float64)
                    s["exp_avg"], s["exp_avg_sq"] = torch.zeros_like(w), torch.zeros_like(w)
                s["step"] += 1
                t = s["step"].item()
                s["exp_avg"].mul_(b1).add_(g, alpha=1.0 - b1)
                s["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1.0 - b2)
                alpha = group["lr"] * (1.0 - b2 ** t) ** 0.5 / (1.0 - b1 ** t)
                w.sub_(alpha * s["exp_avg"] / (s["exp_avg_sq"].sqrt() + group["eps"]))


class InsideSqrtAdagrad(torch.optim.Adagrad):
    """PT: PyTorch adds epsilon outside the square root; this adds it inside (Keras's form)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for w in (p for p in group["params"] if p.grad is not None):
                acc, g = self.state[w]["sum"], w.grad
                acc.addcmul_(g, g)
                w.sub_(group["lr"] * g / torch.sqrt(acc + group["eps"]))


class InsideSqrtRMSprop(torch.optim.RMSprop):
    """PT: PyTorch adds epsilon outside the square root; this adds it inside (Keras's form)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            rho = group["alpha"]
            for w in (p for p in group["params"] if p.grad is not None):
                s, g = self.state[w], w.grad
                if not s:
                    s["square_avg"] = torch.zeros_like(w)
                    s["grad_avg"] = torch.zeros_like(w)
                s["square_avg"].mul_(rho).addcmul_(g, g, value=1.0 - rho)
                d = s["square_avg"]
                if group["centered"]:
                    s["grad_avg"].mul_(rho).add_(g, alpha=1.0 - rho)
                    d = d - torch.square(s["grad_avg"])
                w.sub_(group["lr"] * g / torch.sqrt(d + group["eps"]))


# --- section: make_optimizer ---


def make_optimizer(spec: Spec, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The spec's optimizer with every hyperparameter passed explicitly."""
    o, k, params = spec.optimizer, torch.optim, list(model.parameters())
    if o.name == "sgd":
        # PT: b = m*b + g; w -= lr*b equals Keras's velocity form while lr is constant
        return k.SGD(params, lr=o.learning_rate, momentum=o.momentum, nesterov=o.nesterov,
                     dampening=0.0, weight_decay=0.0)
    if o.name == "adagrad":
        cls = InsideSqrtAdagrad if o.epsilon_placement == "inside_sqrt" else k.Adagrad
        return cls(params, lr=o.learning_rate, initial_accumulator_value=o.initial_accumulator,
                   eps=o.epsilon, lr_decay=0.0, weight_decay=0.0)
    if o.name == "rmsprop":
        cls = InsideSqrtRMSprop if o.epsilon_placement == "inside_sqrt" else k.RMSprop
        return cls(params, lr=o.learning_rate, alpha=o.rho, momentum=0.0, eps=o.epsilon,
                   centered=o.centered, weight_decay=0.0)
    cls = KerasAdam if o.epsilon_convention == "keras" else k.Adam
    return cls(params, lr=o.learning_rate, betas=(o.beta_1, o.beta_2), eps=o.epsilon,
               amsgrad=False, weight_decay=0.0)


# --- section: get_optimizer_state ---


def get_optimizer_state(model: torch.nn.Module, spec: Spec) -> dict[str, np.ndarray]:
    """The optimizer's state in the canonical layout (`<slot>/<weight>`, `step`)."""
    from torch_impl.model import _variables

    opt, names = model.optimizer, canonical.trainable_names(spec)
    params = {n: v for n, v in _variables(model).items() if n in names}
    lr = spec.optimizer.learning_rate
    slots = {"velocity": ("momentum_buffer", -lr),  # PT: Keras's velocity is -lr * PyTorch's buffer
             "accumulator": ("sum", 1.0), "m": ("exp_avg", 1.0), "v": ("exp_avg_sq", 1.0), "a": ("grad_avg", 1.0)}
    if spec.optimizer.name == "rmsprop":
        slots["v"] = ("square_avg", 1.0)
    state = {}
    for entry in canonical.state_names(spec):
        if entry == "step":  # one count for all parameters: read it from the first
            state["step"] = np.asarray(float(opt.state.get(params[names[0]], {}).get("step", 0.0)))
            continue
        slot, weight = entry.split("/", 1)
        key, scale = slots[slot]
        value = opt.state.get(params[weight], {}).get(key)
        value = torch.zeros_like(params[weight]) if value is None else scale * value
        state[entry] = (value.T if weight.endswith("kernel") else value).detach().cpu().numpy().copy()
    return state
