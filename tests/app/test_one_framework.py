"""One framework is enough: on a machine without TensorFlow (as many GPU machines are),
`bench`, `compare`, `experiment` and `diff` run PyTorch's part and say in one line per
framework what they skipped and why; asking for the missing one by name is a one-line
error. Each command runs in a fresh Python that sees this environment's packages except
tensorflow and keras (`-S`: no site-packages of its own; a folder of links to every other
package on PYTHONPATH)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MISSING = "tf: skipped (tensorflow is not installed)"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    packages = tmp_path_factory.mktemp("site-packages-without-tensorflow")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("tensorflow", "keras", "tf_keras")):
            (packages / entry.name).symlink_to(entry)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(packages)]), "PYTHONUNBUFFERED": "1"}


def python(env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def twinbench(env: dict, *args: str) -> subprocess.CompletedProcess:
    return python(env, "-m", "twinbench", *args)


def test_tensorflow_is_really_not_installed(env):
    done = python(env, "-c", "import frameworks, torch; print(frameworks.available()); import tensorflow")
    assert done.stdout.strip() == "('torch',)" and "No module named 'tensorflow'" in done.stderr, done.stderr


def test_bench_measures_the_pytorch_rows_and_skips_the_tf_ones(env, tmp_path):
    done = twinbench(env, "bench", "--device", "cpu", "--quick", "--only", "torch-fast-conf5-cpu,tf-fast-conf5-cpu",
                     "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"twinbench bench: {MISSING}" in done.stdout
    rows = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "rows").glob("*.json")}
    assert rows["torch-fast-conf5-cpu"]["status"] == "ok", rows["torch-fast-conf5-cpu"].get("reason")
    assert (rows["tf-fast-conf5-cpu"]["status"], rows["tf-fast-conf5-cpu"]["reason"]) == \
        ("skipped", "tensorflow is not installed")
    assert "tf-fast-conf5-cpu: skipped: tensorflow is not installed" in done.stdout


def test_compare_experiment_and_diff_run_pytorch_alone(env, tmp_path):
    done = twinbench(env, "compare", "--config", "conf5", "--epochs", "1", "--quiet")
    assert done.returncode == 0 and MISSING in done.stdout and "torch test_acc" in done.stdout, done.stderr[-2000:]
    assert "tf val_acc" not in done.stdout
    done = twinbench(env, "experiment", "conf5", "--seeds", "2", "--epochs", "1", "--train-examples", "640",
                     "--arms", "mapped", "--workers", "1", "--out", str(tmp_path / "exp"))
    assert done.returncode == 0 and f"twinbench experiment: {MISSING}" in done.stderr, done.stderr[-2000:]
    runs = sorted(p.stem for p in (tmp_path / "exp" / "runs").glob("*.json"))
    assert runs == ["mapped-conf5-torch-fast-s1", "mapped-conf5-torch-fast-s2"], runs
    done = twinbench(env, "diff", "torch:conf5", "--steps", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    done = twinbench(env, "diff", "tf:conf5", "torch:conf5", "--steps", "3")
    assert done.returncode == 2 and done.stderr.strip() == "twinbench: error: 'tf:conf5': tensorflow is not installed"
    done = twinbench(env, "train", "--framework", "tf", "--epochs", "1")
    assert done.returncode == 2 and "twinbench: error: tf: tensorflow is not installed" in done.stderr, done.stderr
