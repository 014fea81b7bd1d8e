"""twinbench on TensorFlow 2 / Keras 3: the chapter-5 network driven by the shared spec."""
from common.environment import load_triton_first

load_triton_first()  # before the modules below import TensorFlow
from tf_impl.model import build_model, get_weights, set_weights
from tf_impl.training import loss_and_gradients, train_step, evaluate, fit
from tf_impl.optimizers import describe_optimizer, get_optimizer_state, set_optimizer_state

__all__ = ["build_model", "get_weights", "set_weights", "loss_and_gradients", "train_step",
           "evaluate", "fit", "get_optimizer_state", "set_optimizer_state", "describe_optimizer"]
