"""The float64 NumPy reference ("oracle") of the chapter-5 network.

    from common import reference as ref
    w = ref.init_weights(spec, seed)
    state = ref.init_state(spec, w)
    loss, w, state = ref.train_step(spec, w, state, x, y)

Every function accepts x as (N, 28, 28) or (N, 784) of any float dtype and
integer labels y (N,), and computes in float64 on the canonical layout of
common.canonical.
"""
from common.reference.init import init_weights, start_weights
from common.reference.losses import loss_gradient, loss_value, per_example_loss
from common.reference.model import backward, forward, loss_and_gradients, predict
from common.reference.optimizers import apply_gradients, init_state
from common.reference.train import evaluate, train_step

__all__ = ["init_weights", "start_weights", "forward", "predict", "backward", "loss_value", "loss_gradient",
           "per_example_loss", "loss_and_gradients", "init_state", "apply_gradients",
           "train_step", "evaluate"]
