"""common.defaults' table against the installed frameworks: every default that is a value one can
read (an optimizer's epsilon, a layer's momentum) is read from keras and torch and must be the
table's; the forms (epsilon placement, the running variance, truncation) are measured by the
catalogue entries the rows name, which must exist."""
from __future__ import annotations

import keras
import pytest
import torch

from common.catalogue import ENTRIES
from common.defaults import TABLE, Default


def _torch_opt(cls, key: str):
    return lambda: cls([torch.nn.Parameter(torch.zeros(1))]).defaults[key]


READ = {  # (field, optimizer) -> (Keras's installed default, PyTorch's), in the spec's sense
    ("optimizer.epsilon", "adam"): (lambda: keras.optimizers.Adam().epsilon, _torch_opt(torch.optim.Adam, "eps")),
    ("optimizer.rho", "rmsprop"): (lambda: keras.optimizers.RMSprop().rho, _torch_opt(torch.optim.RMSprop, "alpha")),
    ("optimizer.epsilon", "rmsprop"): (lambda: keras.optimizers.RMSprop().epsilon,
                                       _torch_opt(torch.optim.RMSprop, "eps")),
    ("optimizer.epsilon", "adagrad"): (lambda: keras.optimizers.Adagrad().epsilon,
                                       _torch_opt(torch.optim.Adagrad, "eps")),
    ("optimizer.initial_accumulator", "adagrad"): (lambda: keras.optimizers.Adagrad().initial_accumulator_value,
                                                   _torch_opt(torch.optim.Adagrad, "initial_accumulator_value")),
    ("optimizer.rho", "adadelta"): (lambda: keras.optimizers.Adadelta().rho, _torch_opt(torch.optim.Adadelta, "rho")),
    ("optimizer.epsilon", "adadelta"): (lambda: keras.optimizers.Adadelta().epsilon,
                                        _torch_opt(torch.optim.Adadelta, "eps")),
    ("network.batch_norm.momentum", None): (lambda: keras.layers.BatchNormalization().momentum,
                                            lambda: 1.0 - torch.nn.BatchNorm1d(1).momentum),
    ("network.batch_norm.epsilon", None): (lambda: keras.layers.BatchNormalization().epsilon,
                                           lambda: torch.nn.BatchNorm1d(1).eps),
    ("network.leaky_relu_slope", None): (lambda: keras.layers.LeakyReLU().negative_slope,
                                         lambda: torch.nn.LeakyReLU().negative_slope),
}


@pytest.mark.parametrize("row", TABLE, ids=[f"{r.field}[{r.optimizer or '-'}]" for r in TABLE])
def test_each_row_is_the_installed_default_or_a_measured_form(row: Default):
    assert row.entry in ENTRIES, f"{row.field}: no catalogue entry {row.entry!r}"
    assert row.keras != row.torch, f"{row.field}: the table lists differences only"
    read = READ.get((row.field, row.optimizer))
    if read is None:  # a form, not a value: its catalogue entry measures both frameworks' behaviour
        return
    assert (pytest.approx(read[0]()), pytest.approx(read[1]())) == (row.keras, row.torch), row.field
