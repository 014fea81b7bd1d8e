"""One training step and evaluation of the reference network."""
from __future__ import annotations

import numpy as np

from common.reference import batchnorm as BN
from common.reference import network as stack_net
from common.reference.losses import loss_value
from common.reference.model import forward, loss_gradients_and_cache
from common.reference.optimizers import apply_gradients
from common.spec import Spec


def train_step(spec: Spec, weights: dict[str, np.ndarray], state: dict[str, np.ndarray],
               x: np.ndarray, y: np.ndarray, masks: dict | None = None, epoch: int = 0
               ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Training-mode loss and gradients, one optimizer update, and (batch norm on)
    the moving-statistics update from this batch's pre-update forward pass. masks: each
    dropout layer's mask (common.masks), for a stack with dropout; epoch (0-based): the
    learning rate's (training.schedule).

    Returns (loss before the update, new weights, new state); inputs untouched.
    """
    if spec.network.chapter_mlp is None:  # any other stack: layer by layer
        loss, grads, cache = loss_gradients_and_cache(weights, spec, x, y, masks)
        new_w, new_state = apply_gradients(spec, weights, grads, state, epoch)
        return loss, {**new_w, **stack_net.moving_stats(weights, spec, cache)}, new_state
    loss, grads, cache = loss_gradients_and_cache(weights, spec, x, y)
    new_w, new_state = apply_gradients(spec, weights, grads, state, epoch)
    if spec.network.batch_norm.mode != "none":
        mm, mv = BN.updated_moving_stats(
            spec.network.batch_norm,
            np.asarray(weights["bn/moving_mean"], dtype=np.float64),
            np.asarray(weights["bn/moving_variance"], dtype=np.float64),
            cache["bn_mean"], cache["bn_var"], cache["x"].shape[0])
        new_w["bn/moving_mean"], new_w["bn/moving_variance"] = mm, mv
    return loss, new_w, new_state


def evaluate(weights: dict[str, np.ndarray], spec: Spec, x: np.ndarray,
             y: np.ndarray) -> tuple[float, float]:
    """(mean loss, accuracy) in inference mode; accuracy = mean(argmax p == y)."""
    cache = forward(weights, spec, x, training=False)
    y = np.asarray(y).astype(np.int64).reshape(-1)
    loss = loss_value(spec, cache["z2"], cache["p"], y)
    accuracy = float(np.mean(np.argmax(cache["p"], axis=-1) == y))
    return loss, accuracy
