"""Probes for the field-coverage test: every leaf field of the spec dataclasses (walked from
common.spec, so a field added later is probed without editing anything here), each given a
value that differs from the spec's default and from every framework's installed default, in a
context where the field matters (e.g. the leaky ReLU slope with a leaky ReLU). The network is
probed through the chapter MLP's short form (network.hidden_units, network.batch_norm.mode, ...):
the probes train that MLP; every layer type's fields are probed on a small convnet by
parity_tests/test_fields_layers.py.

UNPROBED lists, in one place, the fields no probe checks, each with the reason: those that
cannot change what a training step computes from given weights and batches, and the one a
sample is too small to check.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from common import spec as S
from common.config import replace, validate

UNPROBED = {
    "name": "a label",
    "description": "a label",
    "network.output_units": "fixed at 10 by validation (MNIST's classes)",
    "training.epochs": "how many epochs run, not what a step computes",
    "training.shuffle": "the order of the batches (common.data.epoch_permutation, shared by both frameworks)",
    "training.seed": "the initial weights and the batch order, which the probes give explicitly",
    "training.standardize": "data preprocessing in common.data, the same for both frameworks",
    "training.input_divisor": "data preprocessing in common.data, the same for both frameworks",
    "training.input_mean": "data preprocessing in common.data, the same for both frameworks",
    "training.input_std": "data preprocessing in common.data, the same for both frameworks",
    "training.evaluation": "which images evaluate a run, not what a step computes",
    "training.validation_split": "which images evaluate a run, not what a step computes",
    "training.k_folds": "which images train and evaluate a run, not what a step computes",
    "training.schedule.step_epochs": "the rate between epochs: `fit` applies it, not a step; parity_tests/"
                                     "test_schedule.py trains both frameworks over its epochs against the oracle",
    "training.schedule.gamma": "the rate between epochs: `fit` applies it, not a step; parity_tests/"
                               "test_schedule.py trains both frameworks over its epochs against the oracle",
    "network.output_bias_init.truncated": "output/bias has 10 entries (fixed): too few to tell a truncated normal "
                                          "from an untruncated one; the same make_initializer code is probed on the "
                                          "other three tensors",
}
# Values a probe must avoid besides the spec default: every framework's installed default for the
# field (parity_tests/test_fields.py reads them from keras and torch and checks this table).
FRAMEWORK_DEFAULTS: dict[str, set] = {
    "network.leaky_relu_slope": {0.3, 0.01, 0.2},
    "network.batch_norm.momentum": {0.99, 0.9, 0.1},
    "network.batch_norm.epsilon": {1e-3, 1e-5},
    "loss.epsilon": {1e-7},
    "optimizer.learning_rate": {0.01, 0.001},
    "optimizer.momentum": {0.0},
    "optimizer.epsilon": {1e-7, 1e-8, 1e-10},
    "optimizer.initial_accumulator": {0.1, 0.0},
    "optimizer.rho": {0.9, 0.99},
    "optimizer.beta_1": {0.9},
    "optimizer.beta_2": {0.999},
}
# Probe values where the generic choice would barely change a step (documented, not required).
SENSITIVE = {"loss.epsilon": 0.2, "network.batch_norm.epsilon": 0.37,
             "optimizer.learning_rate": 0.0037}  # larger Adam steps round beyond the float64 tolerance
CANDIDATES = (0.37, 0.53, 0.21, 1.7, 3.7e-2, 3.7e-3, 2.3e-5)


@dataclass(frozen=True)
class Probe:
    field: str              # dotted, e.g. "optimizer(adam).beta_1" for an optimizer's field
    value: object
    spec: S.Spec

    @property
    def id(self) -> str:
        loss = f"[{self.spec.loss.name}]" if self.field == "loss.formula" else ""
        return f"{self.field}={self.value}{loss}"


BASE = replace(S.Spec(name="probe"), **{"training.batch_size": 4, "training.dtype": "float64"})


def leaves(cls=S.Spec, prefix: str = "") -> list[tuple[str, dataclasses.Field, object]]:
    """(dotted name, field, type) of every leaf; an optimizer's fields as optimizer(<name>).<field>."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, name = hints[f.name], f"{prefix}{f.name}"
        if tp is S.Network:  # probed through the chapter MLP's short-form paths (network.hidden_units, ...)
            out += leaves(S.ChapterMLP, f"{name}.")
        elif typing.get_origin(tp) is typing.Union:  # the optimizer
            for opt_name, opt in S.OPTIMIZERS.items():
                out += [(f"{name}({opt_name}).{n}", g, t) for n, g, t in leaves(opt) if n != "name"]
            out.append((f"{name}.name", f, tp))
        elif dataclasses.is_dataclass(tp):
            out += leaves(tp, f"{name}.")
        else:
            out.append((name, f, tp))
    return out


def context(name: str, spec: S.Spec) -> S.Spec:
    """The spec with what makes `name` matter switched on."""
    if name.startswith("optimizer("):
        opt = S.OPTIMIZERS[name[len("optimizer("):name.index(")")]]()
        spec = replace(spec, optimizer=opt)
        return replace(spec, **{"optimizer.momentum": 0.5}) if name.endswith(".nesterov") else spec
    if name == "network.leaky_relu_slope":
        return replace(spec, **{"network.hidden_activation": "leaky_relu"})
    if name.startswith("network.batch_norm.") and not name.endswith(".mode"):
        return replace(spec, **{"network.batch_norm.mode": "before_activation"})
    if name in ("loss.epsilon", "loss.formula"):  # clipping bites only when it clips: a wide epsilon, or clipped
        spec = replace(spec, **{"loss.name": "categorical_crossentropy", "network.output_activation": "softmax"})
        return replace(spec, **({"loss.formula": "clipped"} if name == "loss.epsilon" else {"loss.epsilon": 0.2}))
    if "_init." in name:
        init, field = name.rsplit(".", 1)
        applies = {f.name: f.metadata.get("applies") for f in dataclasses.fields(S.Initializer)}[field]
        if applies:  # the initializer the field applies to (truncation: he_normal), other fields at defaults
            return replace(spec, **{init: S.Initializer(applies[-1] if field == "truncated" else applies[0])})
    return spec


def _numeric(name: str, f: dataclasses.Field, tp, default) -> object:
    if _plain(name) in SENSITIVE:
        return SENSITIVE[_plain(name)]
    lo, hi = f.metadata.get("range", (None, None))
    avoid = {default} | FRAMEWORK_DEFAULTS.get(_plain(name), set())
    if tp is int:
        return next(v for v in (7, 3, 5, 11) if (lo is None or v >= lo) and (hi is None or v <= hi) and v not in avoid)
    sign = -1.0 if default is not None and default < 0 else 1.0
    for v in (sign * c for c in CANDIDATES):
        if (lo is None or v > lo) and (hi is None or v < hi) and v not in avoid:
            return v
    raise ValueError(f"{name}: no probe value inside the range {lo}..{hi}")


def _plain(name: str) -> str:
    """optimizer(adam).epsilon -> optimizer.epsilon."""
    return name.split("(")[0] + "." + name.split(".", 1)[1] if name.startswith("optimizer(") else name


def _values(name: str, f: dataclasses.Field, tp, default) -> list:
    if name == "optimizer.name":
        return [n for n in S.OPTIMIZERS if n != default]
    if typing.get_origin(tp) is typing.Literal:
        return [v for v in typing.get_args(tp) if v != default]
    if tp is bool:
        return [not default]
    return [_numeric(name, f, tp, default)]


def _set(spec: S.Spec, name: str, value) -> S.Spec:
    if name.endswith("_init.name"):  # another initializer (a constant other than 0, which is zeros)
        return replace(spec, **{name.rsplit(".", 1)[0]: S.Initializer(value, value=0.37 if value == "constant" else 0.0)})
    if name == "optimizer.name":
        return replace(spec, optimizer=S.OPTIMIZERS[value]())
    if name == "loss.name" and value == "binary_crossentropy":
        spec = replace(spec, **{"network.output_activation": "sigmoid"})
    if name == "loss.name" and value == "categorical_crossentropy":
        spec = replace(spec, **{"network.output_activation": "softmax"})
    if name == "loss.name" and value == "nll":  # the two go together (validation)
        spec = replace(spec, **{"network.output_activation": "log_softmax"})
    if name == "network.output_activation" and value == "log_softmax":
        spec = replace(spec, **{"loss.name": "nll"})
    return replace(spec, **{_plain(name): value})


def default_of(name: str):
    """The spec's default for a dotted leaf (an optimizer's field: that optimizer's default)."""
    obj = S.OPTIMIZERS[name[len("optimizer("):name.index(")")]]() if name.startswith("optimizer(") else S.Spec()
    for part in (name.split(".", 1)[1] if name.startswith("optimizer(") else name).split("."):
        obj = getattr(obj, part)
    return obj


def probes() -> list[Probe]:
    """One probe per (field, non-default value) of every leaf not in UNPROBED, on BASE (float64,
    batches of 4) with the field's context switched on; a choice (Literal) with a context, at
    its default too."""
    out = []
    for name, f, tp in leaves():
        if name in UNPROBED:
            continue
        spec = context(name, BASE)
        values = _values(name, f, tp, default_of(name))
        if typing.get_origin(tp) is typing.Literal and spec != BASE:
            # where the context makes the choice matter, the default's own mapping is probed too (a
            # missing one is otherwise invisible: e.g. logits taken as clipped, which differ only when clipping)
            values = [default_of(name), *values]
        wheres = [spec]
        if name == "loss.formula":  # in both losses that have one: categorical (the context) and binary
            # (sigmoid outputs start near 0.5: clipping to [0.45, 0.55] bites)
            wheres.append(replace(_set(spec, "loss.name", "binary_crossentropy"), **{"loss.epsilon": 0.45}))
        for where in wheres:
            for value in values:
                probe = _set(where, name, value)
                validate(probe)
                out.append(Probe(name, value, probe))
    return out
