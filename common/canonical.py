"""The canonical layout in which weights, gradients and optimizer state cross
between the frameworks and the float64 reference.

Weights are a dict of numpy arrays named `<layer>/<weight>` in layer order
(common.stack); the chapter's MLP has

  hidden/kernel (784, H)   hidden/bias (H,)
  bn/gamma, bn/beta, bn/moving_mean, bn/moving_variance (H,)   [batch norm on]
  output/kernel (H, 10)    output/bias (10,)

Layouts are Keras's: dense kernels (in, out), conv kernels (kh, kw, in, out);
PyTorch's nn.Linear keeps (out, in) and nn.Conv2d (out, in, kh, kw), so
torch_impl maps each tensor at the boundary. Gradients use the names
of the trainable weights. Optimizer state uses `<slot>/<weight name>` (for
example `m/hidden/kernel`) plus `step`, the optimizer steps taken, where a result depends on
it (Adam's bias correction, a dropout layer's shared masks, a decaying learning rate).
"""
from __future__ import annotations

import numpy as np

from common import stack
from common.spec import Spec

BN_MOVING = ("bn/moving_mean", "bn/moving_variance")  # the chapter MLP's; is_moving for any stack


def is_moving(name: str) -> bool:
    """Whether a canonical weight is a batch-norm moving statistic (no gradient)."""
    return name.rsplit("/", 1)[-1] in stack.MOVING

SLOTS = {  # optimizer state slots, per trainable weight
    "sgd": ("velocity",),
    "adagrad": ("accumulator",),
    "rmsprop": ("v", "a"),
    "adam": ("m", "v"),
    "adadelta": ("accumulated_grad", "accumulated_delta"),
}


def weight_names(spec: Spec) -> list[str]:
    """All weight names of the spec's network, in layer order."""
    return list(weight_shapes(spec))


def trainable_names(spec: Spec) -> list[str]:
    """Names of the weights that get gradients (all but the moving statistics)."""
    return [n for n in weight_names(spec) if not is_moving(n)]


def weight_shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Shape of every canonical weight (common.stack: `<layer>/<weight>`, Keras's layouts)."""
    return stack.weight_shapes(spec.network)


def slot_names(spec: Spec) -> list[str]:
    """The optimizer state slots the spec's optimizer keeps for every trainable weight."""
    opt = spec.optimizer
    if opt.name == "sgd" and opt.momentum == 0:
        return []
    if opt.name == "rmsprop" and not opt.centered:
        return ["v"]
    return list(SLOTS[opt.name])


def state_names(spec: Spec) -> list[str]:
    """Names of the optimizer state entries (slots used by the spec only)."""
    names = [f"{s}/{w}" for s in slot_names(spec) for w in trainable_names(spec)]
    return names + (["step"] if counts_steps(spec) else [])


def counts_steps(spec: Spec) -> bool:
    """Whether a result depends on the optimizer steps taken (so that the state keeps `step`, and
    a resumed run goes on where it stopped): Adam's bias correction, the shared dropout masks
    (common.masks), a learning rate that decays (Keras's schedule counts steps)."""
    return (spec.optimizer.name == "adam" or spec.training.schedule.gamma != 1.0
            or any(layer.type == "dropout" for layer in spec.network.layers))


def state_shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Shape of every optimizer state entry (`step` is a scalar)."""
    shapes = weight_shapes(spec)
    return {n: () if n == "step" else shapes[n.split("/", 1)[1]] for n in state_names(spec)}


def check_weights(spec: Spec, weights: dict[str, np.ndarray], what: str = "weights") -> None:
    """Raise ValueError naming the first missing, extra or misshapen entry."""
    check_shapes(weights, weight_shapes(spec), what)


def check_shapes(weights: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                 what: str = "weights") -> None:
    """Raise ValueError naming missing, extra or misshapen entries of `weights` against `shapes`."""
    missing = [n for n in shapes if n not in weights]
    extra = [n for n in weights if n not in shapes]
    if missing or extra:
        raise ValueError(f"{what}: missing {missing}, unexpected {extra}; expected {list(shapes)}")
    for name, shape in shapes.items():
        if tuple(np.shape(weights[name])) != tuple(shape):
            raise ValueError(f"{what}: {name} has shape {np.shape(weights[name])}, expected {tuple(shape)}")
