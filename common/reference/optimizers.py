"""The optimizers of common.spec in float64, on canonical weights and state.

State entries are `<slot>/<weight>` (common.canonical.state_names) plus `step`
for Adam (a 0-d float64 array counting applied updates). The update formulas
follow keras/src/optimizers/{sgd,adagrad,rmsprop,adam}.py; the
`outside_sqrt` and `paper` variants follow torch/optim/{adagrad,rmsprop,adam}.py.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from common.canonical import state_names, trainable_names
from common.spec import SGD, Adadelta, Adagrad, Adam, RMSprop, Spec

Slots = dict[str, np.ndarray]


def init_state(spec: Spec, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fresh optimizer state: zeros everywhere, except Adagrad's accumulator
    (initial_accumulator); the step count (0) where the spec keeps one (canonical.counts_steps)."""
    state = {}
    for name in state_names(spec):
        if name == "step":
            state[name] = np.zeros((), dtype=np.float64)
            continue
        slot, wname = name.split("/", 1)
        fill = spec.optimizer.initial_accumulator if slot == "accumulator" else 0.0
        state[name] = np.full(np.shape(weights[wname]), fill, dtype=np.float64)
    return state


def _sgd(opt: SGD, w: np.ndarray, g: np.ndarray, s: Slots, t: float) -> tuple[np.ndarray, Slots]:
    if opt.momentum == 0:
        return w - opt.learning_rate * g, {}
    v = opt.momentum * s["velocity"] - opt.learning_rate * g
    step = opt.momentum * v - opt.learning_rate * g if opt.nesterov else v
    return w + step, {"velocity": v}


def _adagrad(opt: Adagrad, w: np.ndarray, g: np.ndarray, s: Slots, t: float) -> tuple[np.ndarray, Slots]:
    acc = s["accumulator"] + g * g
    if opt.epsilon_placement == "inside_sqrt":
        denom = np.sqrt(acc + opt.epsilon)
    else:
        denom = np.sqrt(acc) + opt.epsilon
    return w - opt.learning_rate * g / denom, {"accumulator": acc}


def _rmsprop(opt: RMSprop, w: np.ndarray, g: np.ndarray, s: Slots, t: float) -> tuple[np.ndarray, Slots]:
    rho = opt.rho
    out = {"v": rho * s["v"] + (1.0 - rho) * g * g}
    d = out["v"]
    if opt.centered:
        out["a"] = rho * s["a"] + (1.0 - rho) * g
        d = d - out["a"] ** 2
    if opt.epsilon_placement == "inside_sqrt":
        denom = np.sqrt(d + opt.epsilon)
    else:
        denom = np.sqrt(d) + opt.epsilon
    return w - opt.learning_rate * g / denom, out


def _adam(opt: Adam, w: np.ndarray, g: np.ndarray, s: Slots, t: float) -> tuple[np.ndarray, Slots]:
    b1, b2, lr, eps = opt.beta_1, opt.beta_2, opt.learning_rate, opt.epsilon
    m = b1 * s["m"] + (1.0 - b1) * g
    v = b2 * s["v"] + (1.0 - b2) * g * g
    if opt.epsilon_convention == "keras":
        new = w - lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t) * m / (np.sqrt(v) + eps)
    else:
        new = w - lr * (m / (1.0 - b1 ** t)) / (np.sqrt(v / (1.0 - b2 ** t)) + eps)
    return new, {"m": m, "v": v}


def _adadelta(opt: Adadelta, w: np.ndarray, g: np.ndarray, s: Slots, t: float) -> tuple[np.ndarray, Slots]:
    rho, eps = opt.rho, opt.epsilon
    acc_g = rho * s["accumulated_grad"] + (1.0 - rho) * g * g
    delta = np.sqrt(s["accumulated_delta"] + eps) / np.sqrt(acc_g + eps) * g
    acc_d = rho * s["accumulated_delta"] + (1.0 - rho) * delta * delta
    return w - opt.learning_rate * delta, {"accumulated_grad": acc_g, "accumulated_delta": acc_d}


_UPDATES = {"sgd": _sgd, "adagrad": _adagrad, "rmsprop": _rmsprop, "adam": _adam, "adadelta": _adadelta}


def apply_gradients(spec: Spec, weights: dict[str, np.ndarray], grads: dict[str, np.ndarray],
                    state: dict[str, np.ndarray], epoch: int = 0
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One optimizer step on every trainable weight, at the learning rate of epoch `epoch`
    (0-based: training.schedule); returns new (weights, state) dicts and leaves the inputs
    untouched. Non-trainable weights are copied."""
    opt = spec.optimizer
    opt = replace(opt, learning_rate=spec.training.schedule.rate(opt.learning_rate, epoch))
    expected = state_names(spec)
    if sorted(state) != sorted(expected):
        raise ValueError(f"optimizer state: got {sorted(state)}, expected {sorted(expected)}")
    new_w = {k: np.array(v, dtype=np.float64) for k, v in weights.items()}
    new_s = {k: np.array(v, dtype=np.float64) for k, v in state.items()}
    t = float(state["step"]) + 1.0 if "step" in state else 0.0
    for name in trainable_names(spec):
        if name not in grads:
            raise ValueError(f"gradients: missing {name}")
        slots = {k.split("/", 1)[0]: new_s[k] for k in expected if k.split("/", 1)[-1] == name}
        g = np.asarray(grads[name], dtype=np.float64)
        new_w[name], updated = _UPDATES[opt.name](opt, new_w[name], g, slots, t)
        for slot, value in updated.items():
            new_s[f"{slot}/{name}"] = value
    if "step" in new_s:
        new_s["step"] = np.asarray(t, dtype=np.float64)
    return new_w, new_s
