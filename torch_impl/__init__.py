"""twinbench on PyTorch: the chapter-5 network driven by the shared spec."""
from torch_impl.model import build_model, get_weights, set_weights
from torch_impl.training import loss_and_gradients, train_step, evaluate, fit
from torch_impl.optimizers import describe_optimizer, get_optimizer_state, set_optimizer_state

__all__ = ["build_model", "get_weights", "set_weights", "loss_and_gradients", "train_step",
           "evaluate", "fit", "get_optimizer_state", "set_optimizer_state", "describe_optimizer"]
