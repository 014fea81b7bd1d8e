"""Each framework's own optimizer wherever the spec's form is one it ships: the book path
builds torch.optim's SGD (plain, momentum, nesterov), Adam in the paper's form, Adagrad and
RMSprop with epsilon outside the root, and Keras's SGD, Adam (epsilon hat), Adagrad and
RMSprop with epsilon inside, and Adadelta in both (one form); a spec rule runs only for the
forms a framework does not ship.
Each form, every setting passed off the framework's defaults (parity_tests/design.py), trains
50 steps against the float64 oracle in float32 and float64, and the run says which ran."""
from __future__ import annotations

import pytest

from common.config import load_spec
from parity_tests import design as D
from parity_tests import harness as H

# the class each framework's book path must build (None: the spec rule, a class of twinbench's)
OWN = {
    "torch": {"sgd": "SGD", "sgd-momentum": "SGD", "sgd-nesterov": "SGD", "adam-paper": "Adam",
              "adagrad-outside": "Adagrad", "rmsprop-outside": "RMSprop", "rmsprop-centered-outside": "RMSprop",
              "adadelta": "Adadelta"},
    "tf": {"sgd": "SGD", "sgd-momentum": "SGD", "sgd-nesterov": "SGD", "adam-keras": "Adam",
           "adagrad-inside": "Adagrad", "rmsprop-inside": "RMSprop", "rmsprop-centered-inside": "RMSprop",
           "adadelta": "Adadelta"},
}
PACKAGE = {"torch": "torch.optim", "tf": "keras.optimizers"}
BASE = H.replace(load_spec("conf4"), **{"training.batch_size": 16, "network.hidden_units": 16})


def own_class(fw: str, name: str):
    """The framework's class for optimizer variant `name`, or None where it ships no such form."""
    cls = OWN[fw].get(name)
    if cls is None:
        return None
    if fw == "torch":
        import torch
        return getattr(torch.optim, cls)
    import keras
    return getattr(keras.optimizers, cls)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(D.FORMS))
def test_book_runs_the_frameworks_own_optimizer(name: str, dtype: str):
    spec = H.replace(BASE, **{"optimizer": D.FORMS[name], "training.dtype": dtype})
    cid = f"own-optimizer-{name}-{dtype}"
    H.register_config(cid)
    for fw in H.FRAMEWORKS:
        model, want = H.impl(fw).build_model(spec, seed=1), own_class(fw, name)
        said = H.impl(fw).describe_optimizer(spec)
        if want is not None:
            assert type(model.optimizer) is want, f"{fw} {name}: built {type(model.optimizer)}, want {want}"
            assert said == f"{PACKAGE[fw]}.{want.__name__}", said
        else:  # the spec rule: a class of twinbench's, which says so and why
            assert type(model.optimizer).__module__.startswith(H.impl(fw).__name__), type(model.optimizer)
            assert said.startswith("spec rule, ") and f"({PACKAGE[fw]} has none)" in said, said
    H.run_trajectory(spec, seed=51, steps=50, what=cid, data_seed=5)
