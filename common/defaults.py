"""Keras's and PyTorch's own defaults, where they differ, in one table: each row a spec field,
both frameworks' values, where the row applies and the catalogue entry that measures the
difference (common.catalogue, docs/differences.md). The registries' `own_defaults` (the
experiment's defaults arm: a port written without twinbench) and the catalogue's index of the
fields each entry explains both read it.
"""
from __future__ import annotations

from dataclasses import dataclass

from common.spec import Spec


@dataclass(frozen=True)
class Default:
    field: str                     # the dotted spec field (config.replace's path)
    keras: object                  # keras.optimizers / keras.layers' default, in the spec's sense
    torch: object                  # torch.optim / torch.nn's, in the spec's sense
    entry: str                     # the catalogue entry that measures it
    optimizer: str | None = None   # the row applies to this optimizer only

    def value(self, framework: str) -> object:
        """This framework's default ("tf" or "torch")."""
        return {"tf": self.keras, "torch": self.torch}[framework]


TABLE: tuple[Default, ...] = (
    Default("optimizer.epsilon", 1e-7, 1e-8, "adam-epsilon", "adam"),
    Default("optimizer.epsilon_convention", "keras", "paper", "adam-epsilon-placement", "adam"),
    Default("optimizer.rho", 0.9, 0.99, "rmsprop-rho", "rmsprop"),
    Default("optimizer.epsilon", 1e-7, 1e-8, "rmsprop-epsilon-placement", "rmsprop"),
    Default("optimizer.epsilon_placement", "inside_sqrt", "outside_sqrt", "rmsprop-epsilon-placement", "rmsprop"),
    Default("optimizer.epsilon", 1e-7, 1e-10, "adagrad-epsilon-placement", "adagrad"),
    Default("optimizer.epsilon_placement", "inside_sqrt", "outside_sqrt", "adagrad-epsilon-placement", "adagrad"),
    Default("optimizer.initial_accumulator", 0.1, 0.0, "adagrad-initial-accumulator", "adagrad"),
    Default("optimizer.rho", 0.95, 0.9, "adadelta-defaults", "adadelta"),
    Default("optimizer.epsilon", 1e-7, 1e-6, "adadelta-defaults", "adadelta"),
    # PyTorch's BatchNorm momentum 0.1 weights the new statistic: 0.9 in the spec's (Keras's) sense
    Default("network.batch_norm.momentum", 0.99, 0.9, "bn-momentum"),
    Default("network.batch_norm.epsilon", 1e-3, 1e-5, "bn-epsilon"),
    Default("network.batch_norm.running_variance", "biased", "unbiased", "bn-running-variance"),
    Default("network.leaky_relu_slope", 0.3, 0.01, "leaky-relu-slope"),
    Default("network.hidden_kernel_init.truncated", True, False, "he-normal-truncation"),
    Default("network.output_kernel_init.truncated", True, False, "he-normal-truncation"),
)


def applies(spec: Spec, row: Default) -> bool:
    """Whether the row's field is in use by the spec: its optimizer, batch norm on, a leaky ReLU,
    a normal initializer; the short form's network fields only on the chapter's MLP (a stack's
    own layers have no rows yet)."""
    if row.optimizer is not None:
        return spec.optimizer.name == row.optimizer
    if row.field.startswith("network."):
        net = spec.network.chapter_mlp
        if net is None:
            return False
        if row.field.startswith("network.batch_norm."):
            return net.batch_norm.mode != "none"
        if row.field == "network.leaky_relu_slope":
            return net.hidden_activation == "leaky_relu"
        if row.field.endswith(".truncated"):
            return getattr(net, row.field.split(".")[1]).name in ("he_normal", "glorot_normal")
    return True


def own_defaults(spec: Spec, framework: str) -> Spec:
    """The spec as a port written without twinbench gets it in `framework`: every row that applies
    set to that framework's own value."""
    from common.config import replace
    changes = {row.field: row.value(framework) for row in TABLE if applies(spec, row)}
    return replace(spec, **changes) if changes else spec


def fields_of(entry: str) -> tuple[str, ...]:
    """The spec fields whose defaults a catalogue entry measures, in table order."""
    return tuple(dict.fromkeys(row.field for row in TABLE if row.entry == entry))
