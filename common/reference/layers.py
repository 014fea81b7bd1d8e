"""The reference network layer by layer: each layer's training-mode output and its local
backward pass (vector-Jacobian product) on a given input, in canonical layer order.

    names = layer_names(spec)                 # hidden, [bn, activation | activation, bn], output, loss
    out = layer_forward(w, spec, "activation", u, y)
    du, grads = layer_vjp(w, spec, "activation", u, g, y)

`twinbench diff` runs every side's layers on the same inputs to name the first layer
whose output (or local gradient) differs. The loss layer maps the output layer's
pre-activation z2 to the batch-mean loss (output activation included).
"""
from __future__ import annotations

import numpy as np

from common.reference import activations as A
from common.reference import batchnorm as BN
from common.reference.losses import loss_gradient, loss_value
from common.spec import Spec

DENSE = {"hidden": "hidden", "output": "output"}  # layer -> weight prefix


def layer_names(spec: Spec) -> list[str]:
    """The layers in canonical (forward) order."""
    mode = spec.network.batch_norm.mode
    middle = {"none": ["activation"], "before_activation": ["bn", "activation"],
              "after_activation": ["activation", "bn"]}[mode]
    return ["hidden", *middle, "output", "loss"]


def layer_forward(w: dict, spec: Spec, name: str, u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The training-mode output of layer `name` for input u (float64)."""
    u = np.asarray(u, np.float64)
    if name in DENSE:
        p = DENSE[name]
        return u.reshape(len(u), -1) @ np.asarray(w[f"{p}/kernel"], np.float64) + np.asarray(w[f"{p}/bias"], np.float64)
    if name == "bn":
        out, _ = BN.train_forward(u, np.asarray(w["bn/gamma"], np.float64), np.asarray(w["bn/beta"], np.float64),
                                  spec.network.batch_norm.epsilon)
        return out
    if name == "activation":
        return A.hidden(spec.network, u)
    if name == "loss":
        return np.asarray(loss_value(spec, u, A.output(spec.network, u), y))
    raise ValueError(f"layer: unknown {name!r}; layers: {', '.join(layer_names(spec))}")


def layer_vjp(w: dict, spec: Spec, name: str, u: np.ndarray, g, y: np.ndarray) -> tuple[np.ndarray, dict]:
    """(dL/du, {weight name: dL/dweight}) of layer `name` at input u, given g = dL/d(output)."""
    u, g = np.asarray(u, np.float64), np.asarray(g, np.float64)
    if name in DENSE:
        p = DENSE[name]
        flat = u.reshape(len(u), -1)
        du = (g @ np.asarray(w[f"{p}/kernel"], np.float64).T).reshape(u.shape)
        return du, {f"{p}/kernel": flat.T @ g, f"{p}/bias": g.sum(axis=0)}
    if name == "bn":
        gamma = np.asarray(w["bn/gamma"], np.float64)
        _, cache = BN.train_forward(u, gamma, np.asarray(w["bn/beta"], np.float64), spec.network.batch_norm.epsilon)
        du, dgamma, dbeta = BN.train_backward(g, gamma, cache)
        return du, {"bn/gamma": dgamma, "bn/beta": dbeta}
    if name == "activation":
        return g * A.hidden_derivative(spec.network, u, A.hidden(spec.network, u)), {}
    if name == "loss":
        return float(g) * loss_gradient(spec, u, A.output(spec.network, u), y), {}
    raise ValueError(f"layer: unknown {name!r}; layers: {', '.join(layer_names(spec))}")
