"""What a user sees: no line of TensorFlow's own logging on a CPU machine, --version, the result
under --quiet, and nothing overwritten silently (each refusal one line, no file touched)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from twinbench.cli import main
from twinbench.experiment import plan
from twinbench.experiment.execute import run_path

ROOT = Path(__file__).resolve().parents[2]
TF_LOG = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|cuInit|cuda drivers|oneDNN|XlaSerializedCacheEntry|AOT result")


def test_no_line_of_tensorflows_logging_reaches_the_terminal(tmp_path):
    """Twice (the second run on the compile cache the first left), with TF's log level unset."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TWINBENCH_COMPILE_CACHE")}
    env.update(TWINBENCH_COMPILE_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    for run in (1, 2):
        done = subprocess.run([sys.executable, "-m", "twinbench", "train", "--framework", "tf", "--config", "conf5",
                               "--variant", "fast", "--epochs", "1"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        noise = [line for line in done.stderr.splitlines() if TF_LOG.search(line)]
        assert noise == [], f"run {run}: {noise}"
        assert "Epoch 1/1" in done.stdout and "compile:" in done.stdout and "test_acc" in done.stdout


def test_version_names_twinbench_and_the_frameworks(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    assert re.match(r"twinbench \d+\.\d+\.\d+, tensorflow \S+, keras \S+, torch \S+", out), out


def test_version_names_a_framework_that_is_not_installed(monkeypatch):
    from importlib import metadata

    from twinbench import cli
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda p: (_ for _ in ()).throw(metadata.PackageNotFoundError(p))
                        if p in ("tensorflow", "twinbench") else real(p))
    assert re.fullmatch(r"twinbench unknown, tensorflow: not installed, keras \S+, torch \S+", cli.version())


def test_quiet_prints_the_result_line_only(capsys):
    assert main(["train", "--framework", "torch", "--config", "conf5", "--epochs", "1", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "1 epoch from torch's own initializers, seed 7" in lines[0], lines
    assert re.fullmatch(r"torch fast conf5: 1 epoch, loss \S+ - acc \S+ - test_loss \S+ - test_acc 0\.9\d+ "
                        r"\(\S+ s training\)", lines[1]), lines[1]


def _untouched(paths: list[Path]) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}


def test_train_refuses_to_overwrite_a_checkpoint_or_history(tmp_path, capsys):
    save, history = tmp_path / "w.npz", tmp_path / "h.json"
    save.write_bytes(b"an earlier run's checkpoint")
    history.write_text("{}")
    before = _untouched([save, history])
    for args, flag, path in ((["--save", str(save)], "--save", save), (["--json", str(history)], "--json", history)):
        assert main(["train", "--framework", "torch", "--config", "conf5", "--epochs", "1", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"twinbench: error: {flag} {path} exists: add --resume to continue that run or --overwrite " \
                      "to replace it", err
    assert main(["train", "--framework", "torch", "--save", str(save), "--resume", "--overwrite"]) == 2
    assert "choose one" in capsys.readouterr().err
    assert _untouched([save, history]) == before


def _finished(out: Path, seed: int) -> Path:
    task = plan.plan(plan.load_specs(["conf5"]), ["torch"], [seed], ["mapped"], "book", 1, 0, 640)[0]
    record = {"key": task.key, "arm": "mapped", "spec": "conf5", "framework": "torch", "seed": seed, "fold": None,
              "status": "complete", "settings": task.settings(),
              "history": [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85,
                           "seconds": 1.0}]}
    path = run_path(out, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_experiment_refuses_a_folder_of_finished_runs_and_resume_with_nothing_left_starts_no_cluster(
        tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["experiment", "conf5", "--frameworks", "torch", "--seeds", "1", "--epochs", "1", "--variant", "book",
            "--arms", "mapped", "--train-examples", "640", "--out", str(out)]
    finished = _finished(out, 1)
    before = _untouched([finished])
    assert main(args) == 2
    assert capsys.readouterr().err.strip().endswith(f"--out {out} holds 1 finished run of this experiment: add "
                                                   "--resume to keep them and make the rest, or --overwrite to make "
                                                   "them all again")
    assert _untouched([finished]) == before and sorted(p.name for p in out.rglob("*")) == sorted(["runs", finished.name])
    assert main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "the run is done already (--resume): nothing to run, no cluster started" in err, err
    assert "running on" not in err and _untouched([finished]) == before


def test_train_with_no_options_finishes_in_seconds_and_counts_epochs(tmp_path):
    """`twinbench train --framework tf` alone: conf5, the fast variant, 20 epochs, each line `Epoch k/20`."""
    import time
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "twinbench", "train", "--framework", "tf"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - began
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("tf fast on cpu: conf5 - ") and "; 20 epochs from" in lines[0], lines[0]
    assert [line.split(" loss")[0] for line in lines if line.startswith("Epoch ")] == \
        [f"Epoch {k}/20" for k in range(1, 21)]
    assert took < 60, f"{took:.0f} s"


def test_bench_quick_writes_under_the_folder_it_runs_in_and_prints_one_narrow_table(tmp_path):
    done = subprocess.run([sys.executable, "-m", "twinbench", "bench", "--quick", "--device", "cpu", "--only",
                           "floor-conf1,torch-fast-conf1"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written and all(p.startswith("twinbench-results/quick/") for p in written), written
    assert "git status" not in done.stdout
    out = done.stdout
    assert out.count("s/epoch    × floor") == 0 and out.count("\nrow ") == 1, out  # one table, twinbench's
    wide = [line for line in out.splitlines() if len(line) >= 100 and str(tmp_path) not in line]
    assert not wide, wide  # a line holding a long path may be longer
    assert "quick run: conf1 rows" in out and "warnings summary" not in out and "SKIPPED" not in out
    listed = " ".join(out.split()).rsplit("written in ", 1)[1]  # the line wraps at 100 columns
    assert all((tmp_path / "twinbench-results" / "quick" / name.strip().rstrip("/")).exists()
               for name in listed.split(": ", 1)[1].split(",")), listed


def test_a_busy_machine_is_said_in_one_line(monkeypatch, capsys):
    from twinbench import run
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    run.warn_if_busy()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: the machine is busy (load 9.0 on ") and "OMP_NUM_THREADS=1" in err[0]
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    run.warn_if_busy()
    assert capsys.readouterr().err == ""
