"""Spec loading: presets, TOML files of one's own, and errors that name the key."""
import dataclasses
import tomllib

import pytest

from common import SpecError, load_spec, preset_names, spec_from_dict, spec_to_dict
from common.config import to_toml
from common.spec import Initializer


def test_presets_are_the_chapter_configurations():
    assert preset_names() == ["conf1", "conf2", "conf3", "conf4", "conf5", "keras_convnet", "torch_mnist"]
    c1, c2, c3, c4, c5 = (load_spec(n) for n in preset_names()[:5])
    assert (c1.network.hidden_activation, c1.network.output_activation, c1.loss.name) == ("tanh", "sigmoid", "mse")
    assert c1.network.hidden_kernel_init == Initializer("uniform", -0.1, 0.1)
    assert c1.network.hidden_bias_init.name == c1.network.output_bias_init.name == "zeros"
    assert (c1.optimizer.name, c1.optimizer.learning_rate, c1.training.batch_size, c1.training.epochs) == ("sgd", 0.01, 1, 20)
    assert c2.network.hidden_kernel_init.name == c2.network.output_kernel_init.name == "glorot_uniform"
    assert (c3.network.output_activation, c3.loss.name) == ("softmax", "categorical_crossentropy")
    assert (c4.network.hidden_activation, c4.network.hidden_kernel_init) == ("relu", Initializer("he_normal", truncated=True))
    assert c4.network.output_kernel_init.name == "glorot_uniform"
    assert (c5.optimizer.name, c5.optimizer.learning_rate, c5.optimizer.epsilon, c5.training.batch_size) == ("adam", 0.001, 1e-7, 64)
    assert [s.name for s in (c1, c2, c3, c4, c5)] == preset_names()[:5]


@pytest.mark.parametrize("name", ["conf1", "conf2", "conf3", "conf4", "conf5"])
def test_round_trips(name):
    spec = load_spec(name)
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert spec_from_dict(tomllib.loads(to_toml(spec))) == spec


def write(tmp_path, text):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def test_own_file_with_base(tmp_path):
    spec = load_spec(write(tmp_path, 'base = "conf5"\n[optimizer]\nname = "rmsprop"\ncentered = true\n'))
    assert spec.name == "mine" and spec.optimizer.name == "rmsprop" and spec.optimizer.centered
    assert spec.training.batch_size == 64 and spec.network.hidden_activation == "relu"


@pytest.mark.parametrize("text, message", [
    ('[network]\nhidden_unitz = 3\n', "network.hidden_unitz: unknown key; allowed: hidden_units"),
    ('[network]\nhidden_units = "25"\n', "network.hidden_units: expected an integer, got '25'"),
    ('[network]\nhidden_units = 2.5\n', "network.hidden_units: expected an integer"),
    ('[training]\nshuffle = 1\n', "training.shuffle: expected true or false"),
    ('[network.batch_norm]\nmomentum = 1.5\n', "network.batch_norm.momentum: 1.5 out of range; allowed: >= 0.0 and <= 1.0"),
    ('[optimizer]\nname = "adam"\nlearning_rate = 0\n', "optimizer.learning_rate: 0 out of range; allowed: > 0.0"),
    ('[optimizer]\nname = "adamw"\n', "optimizer.name: expected one of ['adadelta', 'adagrad', 'adam', 'rmsprop', 'sgd'], got 'adamw'"),
    ('[optimizer]\nname = "sgd"\nbeta_1 = 0.9\n', "optimizer.beta_1: unknown key"),
    ('[network]\nhidden_activation = "gelu"\n', "network.hidden_activation: expected one of 'tanh', 'sigmoid', 'relu', 'leaky_relu', got 'gelu'"),
    ('[network]\nhidden_kernel_init = {name = "he_normal", low = -1.0}\n',
     "network.hidden_kernel_init.low: does not apply to initializer 'he_normal' (only to uniform)"),
    ('[training]\nbatch_size = 1\n[network.batch_norm]\nmode = "before_activation"\n', "training.batch_size: batch normalization"),
    ('[loss]\nname = "categorical_crossentropy"\n', "loss.formula: 'logits' for categorical_crossentropy needs network.output_activation = 'softmax'"),
    ('[network]\noutput_activation = "linear"\n[loss]\nname = "binary_crossentropy"\nformula = "clipped"\n', "loss.name: binary_crossentropy needs probabilities"),
    ('network = 3\n', "network: expected a table"),
    ('[network\n', "not valid TOML"),
])
def test_errors_name_the_key(tmp_path, text, message):
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, text))
    assert message in str(err.value)
    assert "mine.toml" in str(err.value)


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="unknown preset 'conf9'; presets: conf1, conf2, conf3, conf4, conf5"):
        load_spec("conf9")
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml")


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_spec("conf1").training.batch_size = 2


def test_step_decay_schedule(tmp_path):
    """[training.schedule]: epoch e runs at lr * gamma ** (e // step_epochs); it round-trips, a
    constant rate is the default, and the combination no framework pair computes alike is refused."""
    spec = load_spec(write(tmp_path, 'base = "conf5"\n[optimizer]\nname = "adadelta"\nlearning_rate = 1.0\n'
                                     '[training.schedule]\nstep_epochs = 2\ngamma = 0.7\n'))
    s = spec.training.schedule
    assert [s.rate(1.0, e) for e in range(5)] == [1.0, 1.0, 0.7, 0.7, 0.7 ** 2]
    assert load_spec("conf5").training.schedule.rate(0.25, 9) == 0.25
    assert spec_from_dict(tomllib.loads(to_toml(spec))) == spec
    assert "[training.schedule]\nstep_epochs = 2\ngamma = 0.7" in to_toml(spec)
    with pytest.raises(SpecError, match=r"training\.schedule\.gamma: 0 out of range; allowed: > 0.0 and <= 1.0"):
        load_spec(write(tmp_path, 'base = "conf5"\n[training.schedule]\ngamma = 0\n'))
    with pytest.raises(SpecError, match=r"training\.schedule\.gamma: a decaying rate with SGD momentum"):
        load_spec(write(tmp_path, 'base = "conf1"\n[optimizer]\nmomentum = 0.9\n[training.schedule]\ngamma = 0.5\n'))
