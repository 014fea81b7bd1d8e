"""The spec's optimizer in Keras 3: built-ins where their formula is the spec's."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from common import canonical
from common.spec import Spec

# --- section: custom_optimizers ---


class PaperAdam(keras.optimizers.Adam):
    """TF: Keras adds epsilon before bias correction; this is Kingma & Ba's (PyTorch's) form."""

    def update_step(self, gradient, variable, learning_rate):
        lr, g = ops.cast(learning_rate, variable.dtype), ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        i = self._get_variable_index(variable)
        m, v = self._momentums[i], self._velocities[i]
        self.assign(m, self.beta_1 * m + (1.0 - self.beta_1) * g)
        self.assign(v, self.beta_2 * v + (1.0 - self.beta_2) * ops.square(g))
        m_hat = m / (1.0 - ops.power(ops.cast(self.beta_1, variable.dtype), t))
        v_hat = v / (1.0 - ops.power(ops.cast(self.beta_2, variable.dtype), t))
        self.assign_sub(variable, lr * m_hat / (ops.sqrt(v_hat) + self.epsilon))


class OutsideSqrtAdagrad(keras.optimizers.Adagrad):
    """TF: Keras adds epsilon inside the square root; this adds it outside (PyTorch's form)."""

    def update_step(self, gradient, variable, learning_rate):
        lr, g = ops.cast(learning_rate, variable.dtype), ops.cast(gradient, variable.dtype)
        acc = self._accumulators[self._get_variable_index(variable)]
        self.assign_add(acc, ops.square(g))
        self.assign_sub(variable, lr * g / (ops.sqrt(acc) + self.epsilon))


class OutsideSqrtRMSprop(keras.optimizers.RMSprop):
    """TF: Keras adds epsilon inside the square root; this adds it outside (PyTorch's form)."""

    def update_step(self, gradient, variable, learning_rate):
        lr, g = ops.cast(learning_rate, variable.dtype), ops.cast(gradient, variable.dtype)
        i = self._get_variable_index(variable)
        v = self._velocities[i]
        self.assign(v, self.rho * v + (1.0 - self.rho) * ops.square(g))
        d = v
        if self.centered:
            a = self._average_gradients[i]
            self.assign(a, self.rho * a + (1.0 - self.rho) * g)
            d = v - ops.square(a)
        self.assign_sub(variable, lr * g / (ops.sqrt(d) + self.epsilon))


# --- section: make_optimizer ---


def make_optimizer(spec: Spec) -> keras.optimizers.Optimizer:
    """The spec's optimizer with every hyperparameter passed explicitly."""
    o, k = spec.optimizer, keras.optimizers
    if o.name == "sgd":
        return k.SGD(learning_rate=o.learning_rate, momentum=o.momentum, nesterov=o.nesterov)
    if o.name == "adagrad":
        cls = k.Adagrad if o.epsilon_placement == "inside_sqrt" else OutsideSqrtAdagrad
        return cls(learning_rate=o.learning_rate, initial_accumulator_value=o.initial_accumulator,
                   epsilon=o.epsilon)
    if o.name == "rmsprop":
        cls = k.RMSprop if o.epsilon_placement == "inside_sqrt" else OutsideSqrtRMSprop
        return cls(learning_rate=o.learning_rate, rho=o.rho, momentum=0.0, epsilon=o.epsilon,
                   centered=o.centered)
    cls = k.Adam if o.epsilon_convention == "keras" else PaperAdam
    return cls(learning_rate=o.learning_rate, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon,
               amsgrad=False)


# --- section: get_optimizer_state ---


def get_optimizer_state(model: keras.Model, spec: Spec) -> dict[str, np.ndarray]:
    """The optimizer's state in the canonical layout (`<slot>/<weight>`, `step`)."""
    opt, names = model.optimizer, canonical.trainable_names(spec)
    slots = {"velocity": getattr(opt, "momentums", None), "accumulator": getattr(opt, "_accumulators", None),
             "m": getattr(opt, "_momentums", None),
             "v": getattr(opt, "_velocities", None), "a": getattr(opt, "_average_gradients", None)}
    state = {}
    for entry in canonical.state_names(spec):
        if entry == "step":
            state["step"] = np.asarray(float(opt.iterations.numpy()))
            continue
        slot, weight = entry.split("/", 1)
        state[entry] = slots[slot][names.index(weight)].numpy().copy()
    return state
