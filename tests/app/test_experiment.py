"""`twinbench experiment` on Dask: a LocalCluster run, the same tasks through a scheduler
address (a `dask scheduler` and `dask worker` started here), a worker killed mid-run,
--resume, and bad input refused before any run starts. Small runs: book variants, one
epoch on the first few thousand training images."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from common.config import load_spec
from twinbench.cli import main
from twinbench.experiment import execute, plan

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["conf1", "conf5", "--seeds", "2", "--epochs", "1", "--variant", "book", "--train-examples", "2000"]


def records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


def test_local_cluster_run_and_resume(tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["experiment", *SMALL, "--arms", "mapped", "--out", str(out)]) == 0
    runs = records(out)
    assert len(runs) == 2 * 2 * 2 and all(r["status"] == "complete" for r in runs.values())
    assert {r["train_examples"] for r in runs.values()} == {2000}
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["spec"]: r for r in summary["specs"]}
    assert rows["conf1"]["frameworks"]["tf"]["n"] == 2 and "comparison" in rows["conf5"]
    assert rows["conf1"]["chapter"]["printed"]["test_accuracy"][0] == 0.8893
    assert rows["conf5"]["description"] == load_spec("conf5").description  # the figure's panel title
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG" and "| conf5" in (out / "summary.md").read_text()
    # an interrupted experiment: some runs never written; --resume makes exactly those
    for key in ("mapped-conf1-torch-book-s2", "mapped-conf5-tf-book-s1"):
        (out / "runs" / f"{key}.json").unlink()
    capsys.readouterr()
    assert main(["experiment", *SMALL, "--arms", "mapped", "--out", str(out), "--resume"]) == 0
    assert "2 runs made, 6 already done, 0 failed" in capsys.readouterr().out
    assert len(records(out)) == 8


def test_defaults_arm_runs_only_where_the_defaults_differ(tmp_path):
    specs = plan.load_specs(["conf1", "conf5"])
    tasks = plan.plan(specs, ["tf", "torch"], [1, 2], ["mapped", "defaults"], "fast")
    own = [t for t in tasks if t.arm == "defaults"]
    assert {(t.label, t.framework) for t in own} == {("conf5", "torch")}  # Adam eps/form, he_normal truncation
    assert own[0].spec.optimizer.epsilon == 1e-8 and own[0].spec.optimizer.epsilon_convention == "paper"
    assert own[0].spec.network.hidden_kernel_init.truncated is False


def test_defaults_arm_of_a_convnet_takes_the_optimizers_defaults_only():
    """A stack's layers have no entry in the own-defaults table yet: a convnet's defaults arm
    changes its optimizer only (keras_convnet in PyTorch: Adam's epsilon 1e-8 in the paper's form)."""
    tasks = plan.plan(plan.load_specs(["keras_convnet"]), ["tf", "torch"], [1], ["mapped", "defaults"], "fast")
    own = [t for t in tasks if t.arm == "defaults"]
    assert [(t.label, t.framework) for t in own] == [("keras_convnet", "torch")]
    assert own[0].spec.network == load_spec("keras_convnet").network
    assert (own[0].spec.optimizer.epsilon, own[0].spec.optimizer.epsilon_convention) == (1e-8, "paper")


def test_kfold_arm_plans_one_run_per_fold_on_its_split():
    specs = plan.load_specs(["conf5"])
    tasks = plan.plan(specs, ["tf"], [1], ["kfold"], "fast", epochs=1, k_folds=3, train_examples=900)
    assert [(t.fold, t.spec.training.k_folds) for t in tasks] == [(0, 3), (1, 3), (2, 3)]
    from twinbench.experiment.worker import _data
    x0, _, xv0, _ = _data(tasks[0])
    _, _, xv1, _ = _data(tasks[1])
    assert len(x0) == 900 and len(xv0) == len(xv1) == 20_000 and not np.array_equal(xv0[:5], xv1[:5])


def _dask(*args: str, cwd: Path) -> subprocess.Popen:
    dask = Path(sys.executable).with_name("dask")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([str(dask), *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def test_the_same_tasks_through_a_scheduler_address(tmp_path, capsys):
    file = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--scheduler-file", str(file), "--no-dashboard", "--host", "127.0.0.1", cwd=ROOT)]
    try:
        for _ in range(120):
            if file.exists() and file.stat().st_size:
                break
            time.sleep(0.5)
        address = json.loads(file.read_text())["address"]
        procs.append(_dask("worker", address, "--nthreads", "1", "--nworkers", "2", "--no-dashboard", cwd=ROOT))
        out = tmp_path / "exp"
        assert main(["experiment", *SMALL, "--arms", "mapped", "--out", str(out), "--scheduler", address]) == 0
        assert f"running on {address}" in capsys.readouterr().err
        runs = records(out)
        assert len(runs) == 8 and all(r["status"] == "complete" for r in runs.values())
        assert len({r["worker"] for r in runs.values()}) >= 1
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=60)


def test_a_killed_worker_loses_no_other_run(tmp_path):
    specs = plan.load_specs(["conf1"])
    tasks = plan.plan(specs, ["tf", "torch"], [1, 2, 3], ["mapped"], "book", epochs=1, train_examples=6000)
    out, result, killed = tmp_path / "exp", {}, {}
    with execute.client_for(None, workers=2) as client:
        thread = threading.Thread(target=lambda: result.update(execute.execute(tasks, client, out, resume=False)))
        thread.start()
        for _ in range(600):  # wait for a run to be under way on some worker, then kill that worker's process
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy and any((out / "runs").glob("*.json")):
                worker, keys = next(iter(busy.items()))
                pid = client.run(os.getpid, workers=[worker])[worker]
                killed.update(worker=worker, keys=list(keys))
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        thread.join(timeout=600)
    assert killed, "no run was seen under way"
    runs = records(out)
    assert len(runs) == len(tasks) and result["ran"] == len(tasks)  # every run has its record
    victims = {k.split("-", 1)[1].rsplit("-", 1)[0] for k in killed["keys"]}  # twinbench-<task key>-<ns>
    for key, r in runs.items():
        assert r["status"] == "complete" or (key in victims and r["status"] == "failed"), (key, r["status"])


@pytest.mark.parametrize("args,message", [
    (["conf9"], "unknown preset 'conf9'"),
    (["BAD"], "not valid TOML"),
    (["conf1", "--seeds", "0"], "--seeds: expected at least 1 seed, got 0"),
    (["conf1", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler"),
])
def test_bad_input_is_refused_before_any_run(args, message, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\nbatch_size = 3\n")
    out = tmp_path / "exp"
    args = [str(bad) if a == "BAD" else a for a in args]
    assert main(["experiment", *args, "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("twinbench:")]
    assert len(err) == 1 and message in err[0], err
    assert not (out / "runs").exists()
    assert load_spec("conf1").training.epochs == 20  # nothing global was changed
