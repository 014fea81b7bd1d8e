"""The implementations' shared API and the twinbench command line, end to end on the real MNIST."""
import dataclasses
import json

import numpy as np
import pytest

import tf_impl
import torch_impl
from common import checkpoint, load_spec, reference
from twinbench.cli import main
from common.spec import BatchNorm

BN_SPEC = dataclasses.replace(load_spec("conf5"), network=dataclasses.replace(
    load_spec("conf5").network.mlp, batch_norm=BatchNorm("after_activation")).network())


@pytest.mark.parametrize("spec", [load_spec("conf1"), load_spec("conf4"), BN_SPEC,
                                  dataclasses.replace(BN_SPEC, training=dataclasses.replace(BN_SPEC.training, dtype="float64"))],
                         ids=["conf1", "conf4", "conf5-bn", "conf5-bn-float64"])
def test_weights_round_trip_bitwise(spec):
    """TF -> canonical -> PyTorch -> canonical -> TF, every bit kept."""
    start = reference.init_weights(spec, seed=3)
    tf_model, pt_model = tf_impl.build_model(spec), torch_impl.build_model(spec)
    tf_impl.set_weights(tf_model, start)
    torch_impl.set_weights(pt_model, tf_impl.get_weights(tf_model))
    tf_impl.set_weights(tf_model, torch_impl.get_weights(pt_model))
    back = tf_impl.get_weights(tf_model)
    assert list(back) == list(start)
    for name, value in start.items():
        assert back[name].dtype == np.dtype(spec.training.dtype)
        assert back[name].tobytes() == value.astype(spec.training.dtype).tobytes(), name


@pytest.mark.parametrize("fw", [tf_impl, torch_impl], ids=["tf", "torch"])
def test_set_weights_names_the_bad_tensor(fw):
    spec = load_spec("conf1")
    model, good = fw.build_model(spec), reference.init_weights(spec, 0)
    with pytest.raises(ValueError, match=r"missing \['output/bias'\]"):
        fw.set_weights(model, {k: v for k, v in good.items() if k != "output/bias"})
    with pytest.raises(ValueError, match=r"hidden/kernel has shape \(25, 784\), expected \(784, 25\)"):
        fw.set_weights(model, {**good, "hidden/kernel": good["hidden/kernel"].T})
    before = fw.get_weights(model)
    with pytest.raises(ValueError, match=r"output/bias has shape \(9,\), expected \(10,\)"):
        fw.set_weights(model, {**good, "output/bias": good["output/bias"][:9]})
    after = fw.get_weights(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing half-loaded


@pytest.mark.parametrize("fw", [tf_impl, torch_impl], ids=["tf", "torch"])
def test_cuda_without_gpu_is_an_error(fw):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="device 'cuda' requested but .* sees no GPU"):
        fw.build_model(load_spec("conf1"), device="cuda")


def test_config_show_and_data(capsys):
    assert main(["config", "show", "conf5"]) == 0
    out = capsys.readouterr().out
    assert 'name = "conf5"' in out and 'epsilon_convention = "keras"' in out and "batch_size = 64" in out
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "x_train  (60000, 28, 28)" in out and "741c988805d008ac" in out and "verified" in out


def test_bad_config_is_a_clear_error(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\nbatch_sise = 3\n")
    assert main(["train", "--framework", "torch", "--config", str(bad)]) == 2
    assert "training.batch_sise: unknown key" in capsys.readouterr().err


def test_train_save_and_evaluate_across_frameworks(tmp_path, capsys):
    """conf5 for one epoch in each framework; each checkpoint evaluates to the same accuracy in the other."""
    for trainer, evaluator in (("torch", "tf"), ("tf", "torch")):
        paths = {k: tmp_path / f"{trainer}.{k}" for k in ("json", "png", "npz")}
        assert main(["train", "--framework", trainer, "--config", "conf5", "--epochs", "1", "--quiet", "--variant", "book",
                     "--json", str(paths["json"]), "--plot", str(paths["png"]), "--save", str(paths["npz"])]) == 0
        record = json.loads(paths["json"].read_text())
        row = record["history"][0]
        assert set(row) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
        assert record["spec"]["name"] == "conf5" and "environment" in record
        assert 0.90 < row["val_accuracy"] < 0.99, row
        assert paths["png"].read_bytes()[:4] == b"\x89PNG"
        capsys.readouterr()
        assert main(["evaluate", "--framework", evaluator, "--weights", str(paths["npz"])]) == 0
        out = capsys.readouterr().out
        assert f"accuracy {row['val_accuracy']:.4f}" in out, out


def test_checkpoint_refusals(tmp_path):
    spec = load_spec("conf1")
    path = checkpoint.save(tmp_path / "w.npz", spec, reference.init_weights(spec, 0))
    with pytest.raises(checkpoint.CheckpointError, match=r"differs from 'conf5' in \[.*optimizer.name"):
        checkpoint.load(path, load_spec("conf5"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(checkpoint.CheckpointError, match="junk.npz: not a twinbench checkpoint"):
        checkpoint.load(junk)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(checkpoint.CheckpointError, match="plain.npz: not a twinbench checkpoint"):
        checkpoint.load(tmp_path / "plain.npz")
