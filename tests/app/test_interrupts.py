"""Ctrl-C in every phase of `twinbench train`, in both frameworks and both variants: importing the
framework and building the model, loading the data, compiling the fast epoch, training (and
writing each epoch's record). The SIGINT is sent when the phase's line appears, after a random
delay of up to 0.3 s, so it lands anywhere inside it, TensorFlow's device scopes included. Every
run must end with exit status 130, its JSON record saying `interrupted`, and a resume hint that
works: the same command with --resume finishes the run.

Each case runs once in `tox`; `tox -e interrupts` runs each TWINBENCH_INTERRUPT_REPEATS times
(5), to show that it holds every time, not once."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import frameworks

ROOT = Path(__file__).resolve().parents[2]
REPEATS = int(os.environ.get("TWINBENCH_INTERRUPT_REPEATS", "1"))
# phase -> the line that starts it; the variants that have it
PHASES = {"building": (r"^(tf|torch) (book|fast) on cpu: ", ("book", "fast")),
          "data": (r"^optimizer: ", ("book", "fast")),
          "compiling": (r"^building the fast epoch", ("fast",)),
          "training": (r"^Epoch 1/", ("book", "fast"))}
EPOCHS = {"book": 3, "fast": 20}  # a fast epoch takes 0.2 s: enough of them that the run is still training
CASES = [pytest.param(fw, variant, phase, k, id=f"{fw}-{variant}-{phase}-{k + 1}")
         for fw in frameworks.available() for variant in ("book", "fast") for phase, (_, variants) in PHASES.items()
         if variant in variants for k in range(REPEATS)]


def interrupted(args: list[str], marker: str, rng: random.Random, timeout: float = 300) -> tuple[int, str, str]:
    """Run `twinbench ARGS`, send SIGINT a random moment after the first stdout line matching
    `marker`; (exit status, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "twinbench", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(marker, line):
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGINT)
            break
    else:
        proc.wait(timeout=timeout)
        pytest.fail(f"the run ended before {marker!r} appeared: {''.join(seen)[-1000:]} {proc.stderr.read()[-1000:]}")
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(seen) + out, err


@pytest.mark.parametrize("fw, variant, phase, k", CASES)
def test_ctrl_c_keeps_the_record_and_the_run_resumes(fw: str, variant: str, phase: str, k: int, tmp_path):
    record, save = tmp_path / "run.json", tmp_path / "run.npz"
    args = ["train", "--framework", fw, "--variant", variant, "--epochs", str(EPOCHS[variant]),
            "--json", str(record), "--save", str(save)]
    code, out, err = interrupted(args, PHASES[phase][0], random.Random(f"{fw}{variant}{phase}{k}"))
    assert code == 130, (code, out[-1500:], err[-1500:])
    assert "Traceback" not in err and "scope" not in err, err[-1500:]
    data = json.loads(record.read_text())
    assert data["status"] == "interrupted", data["status"]
    assert "continue with the same command and --resume" in err, err[-800:]
    if k or (phase != "training" and REPEATS == 1):
        return  # the resume, once per case in `tox -e interrupts` and for the training phase in `tox`
    done = subprocess.run([sys.executable, "-m", "twinbench", *args, "--resume"], cwd=ROOT, text=True,
                          capture_output=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-1500:]
    data = json.loads(record.read_text())
    assert data["status"] == "complete" and len(data["history"]) == EPOCHS[variant], data["status"]
    assert [row["epoch"] for row in data["history"]] == list(range(1, EPOCHS[variant] + 1))


def test_ctrl_c_in_compare_keeps_the_record_and_offers_what_compare_can_do(tmp_path):
    record = tmp_path / "both.json"
    code, out, err = interrupted(["compare", "--epochs", "20", "--json", str(record)], r"^Epoch 1/", random.Random(1))
    assert code == 130 and json.loads(record.read_text())["status"] == "interrupted", (code, err[-800:])
    assert "start again with the same command and --overwrite" in err and "--save" not in err and "--resume" not in err
