"""The spec's optimizer in PyTorch: torch.optim's own class wherever its formula is the spec's,
a spec rule only where torch.optim has no such form.

torch.optim's forms: SGD (momentum, nesterov), Adam in the paper's form, Adagrad and RMSprop
with epsilon outside the root. The spec rules: Keras's epsilon-hat Adam, and Adagrad and RMSprop
with epsilon inside the root (`SpecOptimizer`, whose `update` and `_step_scalars` are written
once). torch_impl.fast traces the same step (torch_impl._optim): torch.optim's own `step()`,
or `update`.
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import torch
from torch.optim.lr_scheduler import StepLR

from common import canonical
from common.config import optimizer_form
from common.epochs import check_start
from common.spec import Adagrad, Adam, RMSprop, Spec
from torch_impl.stack import from_canonical, to_canonical

# --- section: update_rules ---


def _adagrad(o: Adagrad, w: torch.Tensor, g: torch.Tensor, s: dict, c: dict) -> None:
    acc = s["accumulator"]  # PT: epsilon inside the root (Keras's form); torch.optim.Adagrad adds it outside
    acc.add_(torch.square(g))
    w.sub_(o.learning_rate * g / torch.sqrt(acc + o.epsilon))


def _rmsprop(o: RMSprop, w: torch.Tensor, g: torch.Tensor, s: dict, c: dict) -> None:
    v = s["v"]  # PT: epsilon inside the root (Keras's form); torch.optim.RMSprop adds it outside
    v.copy_(o.rho * v + (1.0 - o.rho) * torch.square(g))
    d = v
    if o.centered:
        a = s["a"]
        a.copy_(o.rho * a + (1.0 - o.rho) * g)
        d = v - torch.square(a)
    w.sub_(o.learning_rate * g / torch.sqrt(d + o.epsilon))


def _adam_scalars(o: Adam, t: torch.Tensor) -> dict[str, torch.Tensor]:
    b1t, b2t = o.beta_1 ** t, o.beta_2 ** t  # t: in the weights' dtype, as Keras casts it
    return {"alpha": o.learning_rate * torch.sqrt(1.0 - b2t) / (1.0 - b1t)}


def _adam(o: Adam, w: torch.Tensor, g: torch.Tensor, s: dict, c: dict) -> None:
    m, v = s["m"], s["v"]  # PT: Keras's epsilon hat, added before the bias correction
    m.add_((g - m) * (1.0 - o.beta_1))
    v.add_((torch.square(g) - v) * (1.0 - o.beta_2))
    w.sub_(m * c["alpha"] / (torch.sqrt(v) + o.epsilon))


_RULES = {"adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam}
_SCALARS = {"adam": _adam_scalars}


def _step_scalars(spec: Spec, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-step numbers of the spec rule (Adam's bias corrections), for step number(s) t
    (1 for the first step; a 0-d tensor, or a vector of steps: elementwise, the same values).
    PT: Keras computes them inside each update_step; here torch_impl.fast takes a whole epoch's at once."""
    rule = _SCALARS.get(spec.optimizer.name) if own_class(spec) is None else None
    return rule(spec.optimizer, t) if rule else {}


def update(spec: Spec, w: torch.Tensor, g: torch.Tensor, slots: dict[str, torch.Tensor],
           scalars: dict[str, torch.Tensor]) -> None:
    """One step of the spec rule on one weight, in place: `slots` its state (canonical slot
    names), `scalars` this step's `_step_scalars`."""
    _RULES[spec.optimizer.name](spec.optimizer, w, g, slots, scalars)


def _rule_step(spec: Spec, t: torch.Tensor, params: list, grads: list, slots: list[dict],
               scalars: dict[str, torch.Tensor]) -> None:
    """One step of the spec rule, as SpecOptimizer.step and the traced step (torch_impl._optim)
    both take it: count the step in t, then `update` every weight with its slots."""
    t.add_(1)
    for p, g, s in zip(params, grads, slots):
        update(spec, p, g, s, scalars)


# --- section: custom_optimizers ---


class SpecOptimizer(torch.optim.Optimizer):
    """The spec rule as a torch.optim optimizer, for the forms torch.optim does not ship.

    PT: state lives in `state[param][slot]` under the canonical slot names, and one step
    count `t` (a tensor in the parameters' dtype) serves every parameter."""

    def __init__(self, spec: Spec, params: list[torch.nn.Parameter]):
        super().__init__(params, {"lr": spec.optimizer.learning_rate})
        self.spec = spec
        start = getattr(spec.optimizer, "initial_accumulator", 0.0)
        for p in params:
            self.state[p] = {slot: torch.full_like(p, start if slot == "accumulator" else 0.0,
                                                   memory_format=torch.contiguous_format)
                             for slot in canonical.slot_names(spec)}
        self.t = torch.zeros((), dtype=params[0].dtype, device=params[0].device)

    @torch.no_grad()
    def step(self, closure=None):
        group, spec = self.param_groups[0], self.spec
        if group["lr"] != spec.optimizer.learning_rate:  # PT: a scheduler (StepLR) sets the group's rate
            spec = replace(spec, optimizer=replace(spec.optimizer, learning_rate=group["lr"]))
        ps = [p for p in group["params"] if p.grad is not None]
        _rule_step(spec, self.t, ps, [p.grad for p in ps], [self.state[p] for p in ps], _step_scalars(spec, self.t + 1))


# --- section: make_optimizer ---


def own_class(spec: Spec) -> type[torch.optim.Optimizer] | None:
    """torch.optim's class whose formula is the spec optimizer's, or None (a spec rule runs)."""
    o = spec.optimizer
    if o.name == "sgd":
        return torch.optim.SGD
    if o.name == "adam":
        return torch.optim.Adam if o.epsilon_convention == "paper" else None
    if o.name == "adadelta":
        return torch.optim.Adadelta
    outside = o.epsilon_placement == "outside_sqrt"
    return (torch.optim.Adagrad if o.name == "adagrad" else torch.optim.RMSprop) if outside else None


def _settings(spec: Spec) -> dict:
    """Every setting of the spec's torch.optim class that decides a result, passed explicitly."""
    o = spec.optimizer
    if o.name == "sgd":
        return {"lr": o.learning_rate, "momentum": o.momentum, "nesterov": o.nesterov, "dampening": 0.0,
                "weight_decay": 0.0}
    if o.name == "adam":
        return {"lr": o.learning_rate, "betas": (o.beta_1, o.beta_2), "eps": o.epsilon, "weight_decay": 0.0,
                "amsgrad": False}
    if o.name == "adadelta":
        return {"lr": o.learning_rate, "rho": o.rho, "eps": o.epsilon, "weight_decay": 0.0}
    if o.name == "adagrad":
        return {"lr": o.learning_rate, "lr_decay": 0.0, "weight_decay": 0.0, "eps": o.epsilon,
                "initial_accumulator_value": o.initial_accumulator}
    # PT: RMSprop's alpha is the spec's rho
    return {"lr": o.learning_rate, "alpha": o.rho, "eps": o.epsilon, "centered": o.centered, "momentum": 0.0,
            "weight_decay": 0.0}


def make_optimizer(spec: Spec, named_params: dict[str, torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The spec's optimizer over the model's trainable parameters (canonical name -> parameter):
    torch.optim's class where it has the spec's form, else SpecOptimizer."""
    params, cls = list(named_params.values()), own_class(spec)
    optimizer = cls(params, **_settings(spec)) if cls else SpecOptimizer(spec, params)
    optimizer.spec, optimizer.names = spec, list(named_params)  # canonical names, in parameter order
    return optimizer


def describe_optimizer(spec: Spec) -> str:
    """Which optimizer runs, for records and reports: torch.optim's class, or the spec rule and why."""
    cls = own_class(spec)
    if cls:
        return f"torch.optim.{cls.__name__}"
    return f"spec rule, {optimizer_form(spec)} (torch.optim has none)"


# --- section: schedule ---


def use_schedule(model: torch.nn.Module, spec: Spec, n_examples: int, initial_epoch: int = 0) -> StepLR | None:
    """The spec's per-epoch step decay (training.schedule) over the model's optimizer, at epoch
    initial_epoch, for `fit` to step after each epoch: PyTorch's StepLR; None for a constant rate.
    PT: StepLR counts the epochs it is stepped, from the rate it finds: it starts from the spec's."""
    s = spec.training.schedule
    if s.gamma == 1.0:
        return None
    check_start(model.steps_taken, -(-n_examples // spec.training.batch_size), initial_epoch)
    for group in model.optimizer.param_groups:
        group["lr"] = spec.optimizer.learning_rate
        group.pop("initial_lr", None)
    scheduler = StepLR(model.optimizer, step_size=s.step_epochs, gamma=s.gamma)
    with warnings.catch_warnings():  # PT: stepping before the optimizer's first step warns; these are resumed epochs
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(initial_epoch):
            scheduler.step()
    return scheduler


# --- section: get_optimizer_state ---

# PT: torch.optim's state keys (its state_dict's) for each canonical slot
_TORCH_KEYS = {"sgd": {"velocity": "momentum_buffer"}, "adagrad": {"accumulator": "sum"},
               "rmsprop": {"v": "square_avg", "a": "grad_avg"}, "adam": {"m": "exp_avg", "v": "exp_avg_sq"},
               "adadelta": {"accumulated_grad": "square_avg", "accumulated_delta": "acc_delta"}}


def _state_keys(spec: Spec) -> list[tuple[str, str]]:
    """(canonical slot, torch.optim's key) of each parameter's state, in one order; all but SGD
    also count steps, under "step"."""
    keys = [(slot, _TORCH_KEYS[spec.optimizer.name][slot]) for slot in canonical.slot_names(spec)]
    return keys + ([("step", "step")] if spec.optimizer.name != "sgd" else [])


def _entries(optimizer: torch.optim.Optimizer, spec: Spec, count: int = 0) -> dict[str, torch.Tensor]:
    """Canonical state name -> the state as a tensor in the parameter's layout (nn.Linear's kernels
    are (out, in)). torch.optim's: read from its state, or fresh where no step created it yet."""
    params = dict(zip(optimizer.names, optimizer.param_groups[0]["params"]))
    o, own = spec.optimizer, not isinstance(optimizer, SpecOptimizer)
    out = {}
    for entry in canonical.state_names(spec):
        if entry == "step":  # PT: torch.optim.SGD counts none: the model's count (training.train_batch)
            first = optimizer.state[params[optimizer.names[0]]]
            out[entry] = (first.get("step", torch.zeros(())) if o.name != "sgd" else torch.tensor(
                float(count))) if own else optimizer.t
            continue
        slot, weight = entry.split("/", 1)
        if not own:
            out[entry] = optimizer.state[params[weight]][slot]
            continue
        held = optimizer.state[params[weight]].get(_TORCH_KEYS[o.name][slot])
        if held is None:  # no step yet: what the first step starts from
            held = torch.full_like(params[weight], o.initial_accumulator if slot == "accumulator" else 0.0)
        # PT: torch.optim.SGD keeps b = m b + g, w -= lr b; the canonical (Keras) velocity is -lr b
        out[entry] = -o.learning_rate * held if slot == "velocity" else held
    return out


def _load(optimizer: torch.optim.Optimizer, entries: dict[str, torch.Tensor]) -> None:
    """Install canonical entries (tensors in the parameters' layout) as torch.optim's own state."""
    spec, params = optimizer.spec, dict(zip(optimizer.names, optimizer.param_groups[0]["params"]))
    o = spec.optimizer
    # PT: torch.optim keeps each parameter's step count as a CPU tensor (float32 unless float64 is the default)
    count = float(entries["step"]) if "step" in entries else 0.0
    scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for weight, p in params.items():
        held = {}
        for slot, key in _state_keys(spec):
            if slot == "step":
                held[key] = torch.tensor(count, dtype=scalar)
                continue
            value = entries[f"{slot}/{weight}"].to(dtype=p.dtype, device=p.device)
            held[key] = (value / -o.learning_rate if slot == "velocity" else value).clone(
                memory_format=torch.contiguous_format)
        optimizer.state[p] = held


def get_optimizer_state(model: torch.nn.Module, spec: Spec) -> dict[str, np.ndarray]:
    """The optimizer's state in the canonical layout (`<slot>/<weight>`, `step`)."""
    def numpy(name, v):  # PT: each slot in its parameter's layout, mapped as the parameter (torch_impl.stack)
        v = (v if name == "step" else to_canonical(spec, name.split("/", 1)[1], v)).detach().cpu()
        return np.asarray(v.numpy(), dtype=spec.training.dtype if name == "step" else None).copy()
    return {name: numpy(name, v) for name, v in _entries(model.optimizer, spec, model.steps_taken).items()}


def set_optimizer_state(model: torch.nn.Module, spec: Spec, state: dict[str, np.ndarray]) -> None:
    """Load optimizer state in the canonical layout; nothing changes unless every name and shape
    fits. Exact, except torch.optim.SGD's momentum buffer: velocity / -lr (one rounding)."""
    canonical.check_shapes(state, canonical.state_shapes(spec), "optimizer state")
    opt = model.optimizer
    values = {name: torch.as_tensor(np.asarray(v) if name == "step" else
                                    from_canonical(spec, name.split("/", 1)[1], np.asarray(v)))
              for name, v in state.items()}
    if "step" in state:  # the shared dropout masks' step (torch_impl.stack) goes on from here too
        model.steps_taken = int(np.asarray(state["step"]))
    if not isinstance(opt, SpecOptimizer):
        _load(opt, values)
        return
    with torch.no_grad():
        for name, v in _entries(opt, spec).items():
            v.copy_(values[name].to(dtype=v.dtype))
