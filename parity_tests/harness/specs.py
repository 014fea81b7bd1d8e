"""Specs for the parity suite: dotted replacement, readable ids, pytest params."""
from __future__ import annotations

import pytest

from common.config import replace
from common.spec import Spec


def with_dtype(spec: Spec, dtype: str) -> Spec:
    return replace(spec, **{"training.dtype": dtype})


def params(specs: dict[str, Spec]) -> list:
    """pytest params (id -> spec)."""
    return [pytest.param(spec, id=cid) for cid, spec in specs.items()]


def spec_id(spec: Spec) -> str:
    """A short, readable id of a spec's distinguishing fields."""
    n, o, L = spec.network, spec.optimizer, spec.loss
    opt = o.name + {"sgd": lambda: ("-nesterov" if o.nesterov else "-mom" if o.momentum else ""),
                    "adagrad": lambda: "-" + o.epsilon_placement.split("_")[0],
                    "rmsprop": lambda: ("-centered" if o.centered else "") + "-" + o.epsilon_placement.split("_")[0],
                    "adam": lambda: "-" + o.epsilon_convention, "adadelta": lambda: ""}[o.name]()
    loss = L.name if L.name == "mse" else {"binary_crossentropy": "bce", "categorical_crossentropy": "cce"}[L.name] + "-" + L.formula
    init = n.hidden_kernel_init.name + ("" if n.hidden_kernel_init.truncated or "normal" not in n.hidden_kernel_init.name else "-untrunc")
    init += "+cbias" if n.hidden_bias_init.name == "constant" else ""
    return "-".join([n.hidden_activation, n.output_activation, loss, "bn_" + n.batch_norm.mode.split("_")[0],
                     init, opt, f"b{spec.training.batch_size}", spec.training.dtype[-2:]])


__all__ = ["replace", "with_dtype", "params", "spec_id"]
