"""Long runs lose nothing: a run interrupted after its first epoch keeps that epoch (history
and checkpoint) and `--resume` finishes it with the same final weights as a run never
interrupted; a diverging spec stops after its epoch, says so and is recorded as diverged."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from common import checkpoint

ROOT = Path(__file__).resolve().parents[2]


def twinbench(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "twinbench", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def strict_json(path: Path) -> dict:
    """The file as JSON, refusing NaN/Infinity (not JSON for strict readers)."""
    def refuse(token):
        raise ValueError(f"{path}: non-strict JSON constant {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


def interrupt_after_first_epoch(args: list[str]) -> tuple[int, str]:
    """Run twinbench, send Ctrl-C (SIGINT) as soon as epoch 1 is reported; (exit code, stderr)."""
    # with SIGINT's default action: a shell starts background jobs with it ignored, and the
    # child would inherit that and finish its run
    proc = twinbench(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith("Epoch 1/"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.mark.parametrize("fw", ["tf", "torch"])
def test_interrupted_run_keeps_its_epochs_and_resumes_bitwise(tmp_path, fw):
    common = ["train", "--framework", fw, "--config", "conf5", "--epochs", "3", "--quiet"]
    paths = {k: tmp_path / f"{k}.{ext}" for k, ext in (("cut", "json"), ("cutw", "npz"), ("full", "json"),
                                                       ("fullw", "npz"))}
    code, err = interrupt_after_first_epoch(["train", "--framework", fw, "--config", "conf5", "--epochs", "3",
                                             "--json", str(paths["cut"]), "--save", str(paths["cutw"])])
    assert code == 130, err
    record = strict_json(paths["cut"])
    assert record["status"] == "interrupted" and 1 <= len(record["history"]) < 3, record["history"]
    assert record["history"][0]["epoch"] == 1
    assert "interrupted after" in err and str(paths["cut"]) in err and "--resume" in err, err
    _, _, meta = checkpoint.load(paths["cutw"])
    assert meta["epochs"] == len(record["history"]) and "optimizer_state" in meta

    resumed = twinbench(*common, "--json", str(paths["cut"]), "--save", str(paths["cutw"]), "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    record = strict_json(paths["cut"])
    assert record["status"] == "complete" and [r["epoch"] for r in record["history"]] == [1, 2, 3]

    full = twinbench(*common, "--json", str(paths["full"]), "--save", str(paths["fullw"]))
    _, err = full.communicate(timeout=300)
    assert full.returncode == 0, err
    (_, a, _), (_, b, _) = checkpoint.load(paths["cutw"]), checkpoint.load(paths["fullw"])
    for name in b:
        assert a[name].tobytes() == b[name].tobytes(), f"{fw}: {name} differs after resuming"
    last = strict_json(paths["full"])["history"][-1]
    assert all(last[k] == record["history"][-1][k] for k in ("loss", "accuracy", "val_loss", "val_accuracy"))


def test_resume_refuses_another_spec(tmp_path):
    save = tmp_path / "w.npz"
    done = twinbench("train", "--framework", "torch", "--config", "conf5", "--epochs", "1", "--quiet",
                     "--save", str(save))
    assert done.wait(timeout=300) == 0
    other = tmp_path / "other.toml"
    other.write_text('base = "conf5"\n[optimizer]\nlearning_rate = 0.01\n')
    again = twinbench("train", "--framework", "torch", "--config", str(other), "--epochs", "2", "--quiet",
                      "--save", str(save), "--resume")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 2 and "differs in optimizer.learning_rate" in err, err


@pytest.mark.parametrize("variant", ["book", "fast"])
@pytest.mark.parametrize("fw", ["tf", "torch"])
def test_diverging_spec_stops_after_its_epoch(tmp_path, fw, variant):
    spec = tmp_path / "explode.toml"
    spec.write_text('base = "conf5"\n[optimizer]\nname = "sgd"\nlearning_rate = 1e30\n')
    out = tmp_path / "h.json"
    proc = twinbench("train", "--framework", fw, "--variant", variant, "--config", str(spec), "--epochs", "3",
                     "--json", str(out))
    stdout, err = proc.communicate(timeout=600)
    assert proc.returncode == 3, err
    assert "explode: diverged in epoch 1: loss is nan" in err and "recorded as diverged" in err, err
    ours = [line for line in err.splitlines() if line.startswith("twinbench:")]
    assert len(ours) == 1 and "Traceback" not in err, err  # one line (TF's own C++ log lines aside)
    record = strict_json(out)
    assert record["status"] == "diverged" and len(record["history"]) == 1
    assert record["history"][0]["loss"] is None and "diverged in epoch 1" in record["reason"]
    assert "Epoch 2/" not in stdout


def test_derived_spec_describes_its_own_values(tmp_path, capsys):
    from twinbench.cli import main
    spec = tmp_path / "explode.toml"
    spec.write_text('base = "conf5"\n[optimizer]\nname = "sgd"\nlearning_rate = 1e30\n')
    assert main(["config", "show", str(spec)]) == 0
    description = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("description"))
    assert "SGD lr 1e+30" in description and "Adam" not in description and "batch 64" in description


def test_resume_names_state_an_older_checkpoint_lacks(monkeypatch):
    """A checkpoint of a dropout spec written before the optimizer state kept `step` for it: --resume
    names the missing entry instead of failing inside the framework."""
    from common import canonical
    from common.config import SpecError, load_spec
    from twinbench import run
    spec = load_spec("torch_mnist")
    state = {n: 0 for n in canonical.state_names(spec) if n != "step"}
    monkeypatch.setattr(run.checkpoint, "load", lambda path: (spec, {}, {"framework": "tf", "variant": "book",
                                                                         "optimizer_state": state}))
    monkeypatch.setattr(run.checkpoint, "differences", lambda a, b: [])
    with pytest.raises(SpecError, match=r"--resume: old.npz holds no optimizer state entries step \(saved by an older"):
        run.resume_point("old.npz", "tf", spec, "book")
