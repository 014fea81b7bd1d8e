"""Bad input fails fast, in both frameworks alike, with an error that names the
offending key or tensor: batch norm with one example per batch, bad weight
dicts, bad dtype strings, bad TOML (unknown key, wrong type, out of range)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from common.config import SpecError, load_spec, validate
from parity_tests import harness as H

FWS = pytest.mark.parametrize("fw", H.FRAMEWORKS)


@FWS
@pytest.mark.parametrize("mode", ["before_activation", "after_activation"])
def test_batch_norm_with_batch_size_1_is_rejected_at_build(fw: str, mode: str):
    spec = H.replace(load_spec("conf1"), **{"network.batch_norm.mode": mode})  # conf1 trains on batches of 1
    with pytest.raises(SpecError, match=r"^training\.batch_size: batch normalization in training needs at least 2"):
        H.impl(fw).build_model(spec)  # nothing is built, nothing trains


def test_batch_norm_with_batch_size_1_is_rejected_in_toml(tmp_path):
    path = tmp_path / "bn1.toml"
    path.write_text('base = "conf1"\n[network.batch_norm]\nmode = "before_activation"\n')
    with pytest.raises(SpecError, match=r"training\.batch_size"):
        load_spec(path)


def weights_for(spec):
    return H.canonical_weights(spec, 0)


@FWS
@pytest.mark.parametrize("case,tensor", [
    ("missing", "output/bias"), ("missing", "hidden/kernel"), ("extra", "bn/gamma"), ("extra", "hidden/kernal"),
    ("misshaped", "hidden/kernel"), ("misshaped", "output/kernel"), ("misshaped", "output/bias"),
])
def test_set_weights_names_the_bad_tensor(fw: str, case: str, tensor: str):
    spec = load_spec("conf1")
    model, w = H.impl(fw).build_model(spec), weights_for(spec)
    if case == "missing":
        del w[tensor]
    elif case == "extra":
        w[tensor] = np.ones(25)
    else:
        w[tensor] = w[tensor].T if w[tensor].ndim == 2 else np.zeros(w[tensor].size + 1)
    with pytest.raises(ValueError, match=re.escape(tensor)) as err:
        H.impl(fw).set_weights(model, w)
    assert {"missing": "missing", "extra": "unexpected", "misshaped": "shape"}[case] in str(err.value)


@FWS
def test_set_weights_with_batch_norm_needs_the_moving_statistics(fw: str):
    spec = H.replace(load_spec("conf5"), **{"network.batch_norm.mode": "before_activation"})
    model, w = H.impl(fw).build_model(spec), weights_for(spec)
    del w["bn/moving_variance"]
    with pytest.raises(ValueError, match="bn/moving_variance"):
        H.impl(fw).set_weights(model, w)


@pytest.mark.parametrize("dtype", ["float16", "float", "f64", "int32"])
def test_wrong_dtype_string_in_toml(tmp_path, dtype: str):
    path = tmp_path / "dtype.toml"
    path.write_text(f'base = "conf1"\n[training]\ndtype = "{dtype}"\n')
    with pytest.raises(SpecError, match=r"training\.dtype: expected one of 'float32', 'float64'"):
        load_spec(path)


@FWS
def test_wrong_dtype_string_in_code_is_rejected_at_build(fw: str):
    spec = H.replace(load_spec("conf1"), **{"training.dtype": "float16"})
    with pytest.raises((SpecError, ValueError), match=r"training\.dtype"):
        H.impl(fw).build_model(spec)


TOML_CASES = {  # name: (TOML text after base = "conf5", the dotted key the error must name)
    "unknown top-level key": ('seed = 3\n', "seed"),
    "unknown section": ('[trainer]\nepochs = 3\n', "trainer"),
    "unknown network key": ('[network]\nhidden_unit = 30\n', "network.hidden_unit"),
    "unknown batch-norm key": ('[network.batch_norm]\nmomentom = 0.9\n', "network.batch_norm.momentom"),
    "unknown initializer key": ('[network]\nhidden_kernel_init = {name = "uniform", lo = -1.0}\n',
                                "network.hidden_kernel_init.lo"),
    "unknown optimizer key": ('[optimizer]\nname = "adam"\nbeta1 = 0.9\n', "optimizer.beta1"),
    "key of another optimizer": ('[optimizer]\nname = "sgd"\nepsilon = 1e-7\n', "optimizer.epsilon"),
    "string for an integer": ('[training]\nbatch_size = "64"\n', "training.batch_size"),
    "float for an integer": ('[training]\nepochs = 3.0\n', "training.epochs"),
    "bool for a number": ('[optimizer]\nlearning_rate = true\n', "optimizer.learning_rate"),
    "integer for a bool": ('[training]\nshuffle = 0\n', "training.shuffle"),
    "number for a string": ('[loss]\nname = 3\n', "loss.name"),
    "table for a value": ('[network]\nhidden_units = {value = 3}\n', "network.hidden_units"),
    "unknown choice": ('[network]\noutput_activation = "tanh"\n', "network.output_activation"),
    "momentum above 1": ('[network.batch_norm]\nmomentum = 1.5\n', "network.batch_norm.momentum"),
    "zero learning rate (open bound)": ('[optimizer]\nlearning_rate = 0.0\n', "optimizer.learning_rate"),
    "negative epsilon": ('[optimizer]\nepsilon = -1e-7\n', "optimizer.epsilon"),
    "batch size 0": ('[training]\nbatch_size = 0\n', "training.batch_size"),
    "too many hidden units": ('[network]\nhidden_units = 5000\n', "network.hidden_units"),
    "negative leaky slope": ('[network]\nleaky_relu_slope = -0.1\n', "network.leaky_relu_slope"),
    "loss epsilon above 0.5": ('[loss]\nformula = "clipped"\nepsilon = 0.6\n', "loss.epsilon"),
    "loss epsilon 0 (open bound)": ('[loss]\nformula = "clipped"\nepsilon = 0.0\n', "loss.epsilon"),
    "output units other than 10": ('[network]\noutput_units = 11\n', "network.output_units"),
}


@pytest.mark.parametrize("case", TOML_CASES)
def test_bad_toml_names_the_dotted_key(tmp_path, case: str):
    text, key = TOML_CASES[case]
    path = tmp_path / "bad.toml"
    path.write_text('base = "conf5"\n' + text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and f" {key}: " in message, message
    assert str(path) in message


def test_not_toml_and_missing_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[network\nhidden_units = 3\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nothing.toml")
    with pytest.raises(SpecError, match="unknown preset 'conf9'"):
        load_spec("conf9")


def test_every_preset_validates():
    for name in ("conf1", "conf2", "conf3", "conf4", "conf5"):
        validate(load_spec(name))
