"""The spec's optimizer in PyTorch: each update rule written once, as the spec states it.

`update` (one traceable function per optimizer, in place) with `_step_scalars` (what the
rule computes from the step count alone, for a tensor of step numbers in the spec's
dtype) is what `SpecOptimizer.step()` applies in the book loop and what torch_impl.fast
traces into its compiled loop: one formula, two speeds.
"""
from __future__ import annotations

import numpy as np
import torch

from common import canonical
from common.spec import SGD, Adagrad, Adam, RMSprop, Spec

# --- section: update_rules ---


def _sgd(o: SGD, w: torch.Tensor, g: torch.Tensor, s: dict, c: dict) -> None:
    # PT: the Keras form (lr inside the velocity); torch.optim.SGD keeps b = m b + g, w -= lr b
    if o.momentum == 0:
        w.sub_(g * o.learning_rate)
        return
    v = s["velocity"]
    v.copy_(v * o.momentum - g * o.learning_rate)
    w.add_(v * o.momentum - g * o.learning_rate if o.nesterov else v)


def _adagrad(o: Adagrad, w: torch.Tensor, g: torch.Tensor, s: dict, c: dict) -> None:
    acc = s["accumulator"]
    acc.add_(torch.square(g))
    if o.epsilon_placement == "inside_sqrt":
        w.sub_(o.learning_rate * g / torch.sqrt(acc + o.epsilon))
    else:  # PT: torch.optim.Adagrad's form
        w.sub_(o.learning_rate * g / (torch.sqrt(acc) + o.epsilon))


def _rmsprop(o: RMSprop, w: torch.Tensor, g: torch.Tensor, s: dict, c: dict) -> None:
    v = s["v"]
    v.copy_(o.rho * v + (1.0 - o.rho) * torch.square(g))
    d = v
    if o.centered:
        a = s["a"]
        a.copy_(o.rho * a + (1.0 - o.rho) * g)
        d = v - torch.square(a)
    if o.epsilon_placement == "inside_sqrt":
        w.sub_(o.learning_rate * g / torch.sqrt(d + o.epsilon))
    else:  # PT: torch.optim.RMSprop's form
        w.sub_(o.learning_rate * g / (torch.sqrt(d) + o.epsilon))


def _adam_scalars(o: Adam, t: torch.Tensor) -> dict[str, torch.Tensor]:
    b1t, b2t = o.beta_1 ** t, o.beta_2 ** t  # t: in the weights' dtype, as Keras casts it
    if o.epsilon_convention == "keras":
        return {"alpha": o.learning_rate * torch.sqrt(1.0 - b2t) / (1.0 - b1t)}
    return {"1 - b1t": 1.0 - b1t, "1 - b2t": 1.0 - b2t}


def _adam(o: Adam, w: torch.Tensor, g: torch.Tensor, s: dict, c: dict) -> None:
    m, v = s["m"], s["v"]
    m.add_((g - m) * (1.0 - o.beta_1))
    v.add_((torch.square(g) - v) * (1.0 - o.beta_2))
    if o.epsilon_convention == "keras":
        w.sub_(m * c["alpha"] / (torch.sqrt(v) + o.epsilon))
    else:  # PT: torch.optim.Adam's form (Kingma & Ba)
        w.sub_(o.learning_rate * (m / c["1 - b1t"]) / (torch.sqrt(v / c["1 - b2t"]) + o.epsilon))


_RULES = {"sgd": _sgd, "adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam}
_SCALARS = {"adam": _adam_scalars}


def _step_scalars(spec: Spec, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-step numbers of the spec's rule (Adam's bias corrections), for step number(s) t
    (1 for the first step; a 0-d tensor, or a vector of steps: elementwise, the same values).
    PT: Keras computes them inside each update_step; here torch_impl.fast takes a whole epoch's at once."""
    rule = _SCALARS.get(spec.optimizer.name)
    return rule(spec.optimizer, t) if rule else {}


def update(spec: Spec, w: torch.Tensor, g: torch.Tensor, slots: dict[str, torch.Tensor],
           scalars: dict[str, torch.Tensor]) -> None:
    """One step of the spec's optimizer on one weight, in place: `slots` its state
    (canonical slot names), `scalars` this step's `_step_scalars`."""
    _RULES[spec.optimizer.name](spec.optimizer, w, g, slots, scalars)


# --- section: custom_optimizers ---


class SpecOptimizer(torch.optim.Optimizer):
    """A torch.optim optimizer whose `step()` applies the spec's `update` to each parameter.

    PT: state lives in `state[param][slot]` under the canonical slot names, and one step
    count `t` (a tensor in the parameters' dtype) serves every parameter."""

    def __init__(self, spec: Spec, named_params: dict[str, torch.nn.Parameter]):
        params = list(named_params.values())
        super().__init__(params, {"lr": spec.optimizer.learning_rate})
        self.spec, self.names = spec, list(named_params)
        start = getattr(spec.optimizer, "initial_accumulator", 0.0)
        for p in params:
            self.state[p] = {slot: torch.full_like(p, start if slot == "accumulator" else 0.0,
                                                   memory_format=torch.contiguous_format)
                             for slot in canonical.slot_names(spec)}
        self.t = torch.zeros((), dtype=params[0].dtype, device=params[0].device)

    @torch.no_grad()
    def step(self, closure=None):
        self.t.add_(1)
        scalars = _step_scalars(self.spec, self.t)
        for p in self.param_groups[0]["params"]:
            if p.grad is not None:
                update(self.spec, p, p.grad, self.state[p], scalars)


# --- section: make_optimizer ---


def make_optimizer(spec: Spec, named_params: dict[str, torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The spec's optimizer over the model's trainable parameters (canonical name -> parameter)."""
    return SpecOptimizer(spec, named_params)


# --- section: get_optimizer_state ---


def _entries(model: torch.nn.Module, spec: Spec) -> dict[str, torch.Tensor]:
    """Canonical state name -> the optimizer's tensor (kernels in nn.Linear's (out, in))."""
    opt = model.optimizer
    params = dict(zip(opt.names, opt.param_groups[0]["params"]))
    out = {}
    for entry in canonical.state_names(spec):
        if entry == "step":
            out[entry] = opt.t
        else:
            slot, weight = entry.split("/", 1)
            out[entry] = opt.state[params[weight]][slot]
    return out


def get_optimizer_state(model: torch.nn.Module, spec: Spec) -> dict[str, np.ndarray]:
    """The optimizer's state in the canonical layout (`<slot>/<weight>`, `step`)."""
    return {name: (v.T if name.endswith("kernel") else v).detach().cpu().numpy().copy()
            for name, v in _entries(model, spec).items()}


def set_optimizer_state(model: torch.nn.Module, spec: Spec, state: dict[str, np.ndarray]) -> None:
    """Load optimizer state in the canonical layout (exactly); nothing changes unless every
    name and shape fits."""
    canonical.check_shapes(state, canonical.state_shapes(spec), "optimizer state")
    with torch.no_grad():
        for name, v in _entries(model, spec).items():
            value = np.asarray(state[name])
            v.copy_(torch.as_tensor(value.T if name.endswith("kernel") else value, dtype=v.dtype))
