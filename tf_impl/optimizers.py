"""The spec's optimizer in Keras 3: keras.optimizers' own class wherever its formula is the
spec's, a spec rule (a subclass below) only where Keras has no such form.

`update` (Keras's `apply`) is what the book's `fit` and tf_impl.fast's compiled loop
both call: one formula, two speeds.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from common import canonical
from common.config import optimizer_form
from common.epochs import check_start
from common.spec import Spec

# --- section: update_rules ---


def update(optimizer: keras.optimizers.Optimizer, grads: list, variables: list) -> None:
    """One step of the spec's optimizer on every weight: Keras's own `apply`, i.e. each
    optimizer's update_step (the built-ins' where their formula is the spec's, the classes
    below where it is not). TF: the step count is the optimizer's `iterations`."""
    optimizer.apply(grads, variables)


# --- section: custom_optimizers ---


class PaperAdam(keras.optimizers.Adam):
    """TF: Keras adds epsilon before bias correction; this is Kingma & Ba's (PyTorch's) form."""

    def update_step(self, gradient, variable, learning_rate):
        lr, g = ops.cast(learning_rate, variable.dtype), ops.cast(gradient, variable.dtype)
        b1, b2, eps = (ops.cast(c, variable.dtype) for c in (self.beta_1, self.beta_2, self.epsilon))
        t = ops.cast(self.iterations + 1, variable.dtype)
        i = self._get_variable_index(variable)
        m, v = self._momentums[i], self._velocities[i]
        self.assign(m, b1 * m + (1.0 - b1) * g)
        self.assign(v, b2 * v + (1.0 - b2) * ops.square(g))
        m_hat, v_hat = m / (1.0 - ops.power(b1, t)), v / (1.0 - ops.power(b2, t))
        self.assign_sub(variable, lr * m_hat / (ops.sqrt(v_hat) + eps))


class OutsideSqrtAdagrad(keras.optimizers.Adagrad):
    """TF: Keras adds epsilon inside the square root; this adds it outside (PyTorch's form)."""

    def update_step(self, gradient, variable, learning_rate):
        lr, g = ops.cast(learning_rate, variable.dtype), ops.cast(gradient, variable.dtype)
        eps = ops.cast(self.epsilon, variable.dtype)
        acc = self._accumulators[self._get_variable_index(variable)]
        self.assign_add(acc, ops.square(g))
        self.assign_sub(variable, lr * g / (ops.sqrt(acc) + eps))


class OutsideSqrtRMSprop(keras.optimizers.RMSprop):
    """TF: Keras adds epsilon inside the square root; this adds it outside (PyTorch's form)."""

    def update_step(self, gradient, variable, learning_rate):
        lr, g = ops.cast(learning_rate, variable.dtype), ops.cast(gradient, variable.dtype)
        rho, eps = ops.cast(self.rho, variable.dtype), ops.cast(self.epsilon, variable.dtype)
        i = self._get_variable_index(variable)
        v = self._velocities[i]
        self.assign(v, rho * v + (1.0 - rho) * ops.square(g))
        d = v
        if self.centered:
            a = self._average_gradients[i]
            self.assign(a, rho * a + (1.0 - rho) * g)
            d = v - ops.square(a)
        self.assign_sub(variable, lr * g / (ops.sqrt(d) + eps))


# --- section: make_optimizer ---


def own_class(spec: Spec) -> type[keras.optimizers.Optimizer] | None:
    """keras.optimizers' class whose formula is the spec optimizer's, or None (a spec rule runs)."""
    o, k = spec.optimizer, keras.optimizers
    if o.name == "sgd":
        return k.SGD
    if o.name == "adam":
        return k.Adam if o.epsilon_convention == "keras" else None
    if o.name == "adadelta":
        return k.Adadelta
    inside = o.epsilon_placement == "inside_sqrt"
    return (k.Adagrad if o.name == "adagrad" else k.RMSprop) if inside else None


_RULE_CLASSES = {"adam": PaperAdam, "adagrad": OutsideSqrtAdagrad, "rmsprop": OutsideSqrtRMSprop}


def make_optimizer(spec: Spec) -> keras.optimizers.Optimizer:
    """The spec's optimizer with every hyperparameter passed explicitly: keras.optimizers' class
    where it has the spec's form, else the spec rule's class above."""
    # TF: Keras casts Python floats through float32 (tf.cast, the Constant initializer of Adagrad's
    # accumulator); float64 scalars keep float64 runs exact
    c = np.float64 if spec.training.dtype == "float64" else float
    o = spec.optimizer
    cls = own_class(spec) or _RULE_CLASSES[o.name]
    lr = lambda: c(o.learning_rate)  # noqa: E731  TF: a float would become a float32 variable (floatx)
    if o.name == "sgd":
        return cls(learning_rate=lr, momentum=c(o.momentum), nesterov=o.nesterov)
    if o.name == "adagrad":
        return cls(learning_rate=lr, initial_accumulator_value=c(o.initial_accumulator), epsilon=c(o.epsilon))
    if o.name == "rmsprop":
        return cls(learning_rate=lr, rho=c(o.rho), momentum=0.0, epsilon=c(o.epsilon), centered=o.centered)
    if o.name == "adadelta":  # TF: Adadelta multiplies its variables by rho as given: a numpy scalar fails in graphs
        return cls(learning_rate=lr, rho=float(o.rho), epsilon=float(o.epsilon))
    return cls(learning_rate=lr, beta_1=c(o.beta_1), beta_2=c(o.beta_2), epsilon=c(o.epsilon), amsgrad=False)


def describe_optimizer(spec: Spec) -> str:
    """Which optimizer runs, for records and reports: keras.optimizers' class, or the spec rule and why."""
    cls = own_class(spec)
    if cls:
        return f"keras.optimizers.{cls.__name__}"
    return f"spec rule, {optimizer_form(spec)} (keras.optimizers has none)"


# --- section: schedule ---


def use_schedule(model: keras.Model, spec: Spec, n_examples: int, initial_epoch: int = 0) -> None:
    """The spec's per-epoch step decay (training.schedule) in the model's optimizer, before `fit`
    trains n_examples per epoch: Keras's ExponentialDecay with staircase=True. TF: Keras's schedules
    count optimizer steps (`iterations`, restored with the optimizer state), so a decay every
    step_epochs epochs is one every step_epochs x (the epoch's steps, the short last batch counted)."""
    s, o = spec.training.schedule, spec.optimizer
    if s.gamma == 1.0:
        return
    per_epoch = -(-n_examples // spec.training.batch_size)
    check_start(int(model.optimizer.iterations.numpy()), per_epoch, initial_epoch)
    # TF: float64 scalars, so that the rate is computed as the oracle's and cast to the weights' dtype at use
    model.optimizer.learning_rate = keras.optimizers.schedules.ExponentialDecay(
        np.float64(o.learning_rate), decay_steps=s.step_epochs * per_epoch, decay_rate=np.float64(s.gamma),
        staircase=True)


# --- section: get_optimizer_state ---


def _entries(model: keras.Model, spec: Spec) -> dict[str, keras.Variable]:
    """Canonical state name -> the optimizer's variable."""
    opt, names = model.optimizer, canonical.trainable_names(spec)
    slots = {"velocity": getattr(opt, "momentums", None), "accumulator": getattr(opt, "_accumulators", None),
             "m": getattr(opt, "_momentums", None),
             "v": getattr(opt, "_velocities", None), "a": getattr(opt, "_average_gradients", None),
             "accumulated_grad": getattr(opt, "_accumulated_grads", None),
             "accumulated_delta": getattr(opt, "_accumulated_delta_vars", None)}
    out = {}
    for entry in canonical.state_names(spec):
        if entry == "step":  # TF: Keras counts steps in an int64 variable
            out[entry] = opt.iterations
        else:
            slot, weight = entry.split("/", 1)
            out[entry] = slots[slot][names.index(weight)]
    return out


def get_optimizer_state(model: keras.Model, spec: Spec) -> dict[str, np.ndarray]:
    """The optimizer's state in the canonical layout (`<slot>/<weight>`, `step`)."""
    return {name: np.asarray(v.numpy(), dtype=spec.training.dtype if name == "step" else None).copy()
            for name, v in _entries(model, spec).items()}


def set_optimizer_state(model: keras.Model, spec: Spec, state: dict[str, np.ndarray]) -> None:
    """Load optimizer state in the canonical layout (exactly); nothing changes unless every
    name and shape fits."""
    canonical.check_shapes(state, canonical.state_shapes(spec), "optimizer state")
    for name, v in _entries(model, spec).items():
        v.assign(np.asarray(state[name]).astype(v.dtype))
