"""The GPU check's machinery, on the CPU: its plan, a step run within its share of the budget
(stopped with every process it started when over), and the summary of targets met or not."""
from __future__ import annotations

import json
import sys
import time

from bench import gpu_check


def test_plan_runs_the_rows_first_and_shares_the_whole_budget(tmp_path):
    plan = gpu_check.steps("cuda", tmp_path)
    assert [name for name, *_ in plan] == ["fast rows and floors", "parity", "small-model map", "book rows"]
    assert abs(sum(share for *_, share in plan) - 1) < 1e-9
    rows = plan[0][1]
    assert rows[rows.index("--device") + 1] == "cuda" and rows[rows.index("--out") + 1] == str(tmp_path)


def test_step_status_ok_exit_and_stopped(tmp_path):
    py = sys.executable
    assert gpu_check.step([py, "-c", "print('hi')"], {}, 30, tmp_path / "a.txt") == "ok"
    assert (tmp_path / "a.txt").read_text() == "hi\n"
    assert gpu_check.step([py, "-c", "raise SystemExit(3)"], {}, 30, tmp_path / "b.txt") == "exit 3"
    child = tmp_path / "child.pid"
    # a step that starts a process of its own and overruns: both are stopped
    code = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f" open({str(child)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    began = time.perf_counter()
    assert gpu_check.step([py, "-c", code], {}, 2, tmp_path / "c.txt") == "stopped at its 2 s share of the budget"
    assert time.perf_counter() - began < 20
    pid = int(child.read_text())
    time.sleep(0.2)
    try:
        state = open(f"/proc/{pid}/stat").read().split()[2]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z"), state  # killed (a zombie until its parent, also killed, is reaped)


def _latest(tmp_path, rows):
    env = {"date": "2026-12-04", "git_commit": "abcdef123", "python": "3.12.3",
           "torch": {"version": "2.11.0", "cuda": "13.0", "gpu": "NVIDIA H200"}}
    (tmp_path / "latest.json").write_text(json.dumps({"environment": env, "rows": rows}))


def test_summary_names_the_card_and_each_target(tmp_path):
    _latest(tmp_path, [
        {"row": "torch-fast-conf5-cuda", "median": 0.0301, "target": 0.035, "met": "met", "startup_met": "met",
         "x_floor": 1.21},
        {"row": "torch-fast-conf1-cuda", "median": 0.9, "target": 0.65, "met": "not met",
         "startup_met": "not met: cold 9.1 s > 8 s", "x_floor": None},
        {"row": "torch-fast-conf5-cpu", "median": 0.14, "target": 0.5, "met": "met", "startup_met": "met"},
        {"row": "torch-book-conf5-cuda", "median": 1.0, "target": None}])
    text = gpu_check.summary(tmp_path, [{"step": "parity", "status": "ok", "seconds": 12.5}])
    assert "NVIDIA H200 · torch 2.11.0 (CUDA 13.0) · Python 3.12.3 · 2026-12-04 · commit abcdef1" in text
    assert "| parity | ok | 12.5 |" in text
    assert "| torch-fast-conf5-cuda | 0.0301 | 0.035 | met | met | 1.2x |" in text
    assert "| torch-fast-conf1-cuda | 0.9 | 0.65 | not met | not met: cold 9.1 s > 8 s | — |" in text
    assert "-cpu" not in text and "torch-book" not in text
    assert "| torch-fast-conf5-cpu | 0.14 | 0.5 | met | met | — |" in gpu_check.summary(tmp_path, [], "cpu")


def test_summary_without_results_says_no_gpu(tmp_path):
    text = gpu_check.summary(tmp_path, [{"step": "fast rows and floors", "status": "exit 1", "seconds": 3.0}])
    assert "no GPU · torch ?" in text and "| fast rows and floors | exit 1 | 3.0 |" in text


def test_ctrl_c_reaches_the_step_and_stops_the_check(tmp_path, monkeypatch):
    """A step runs in a session of its own, which the terminal's Ctrl-C does not reach: the check
    passes it on (the benchmark keeps its finished rows), records where it stopped, runs no more."""
    import os
    import signal
    import threading
    py, child = sys.executable, tmp_path / "child.pid"
    code = (f"import signal, sys, time; signal.signal(signal.SIGINT, lambda *a: (open({str(child)!r} + '.int', 'w'),"
            f" sys.exit(130))); open({str(child)!r}, 'w').write('1'); time.sleep(60)")
    monkeypatch.setattr(gpu_check, "steps", lambda device, out: [("one", [py, "-c", code], 0.5),
                                                                 ("two", [py, "-c", "print('ran')"], 0.5)])
    # as in a terminal: Ctrl-C raises KeyboardInterrupt (a process started in the background ignores it)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        began = time.perf_counter()
        done = gpu_check.run("cpu", tmp_path, 60)
    finally:
        signal.signal(signal.SIGINT, before)
    assert time.perf_counter() - began < 20
    assert [d["step"] for d in done] == ["one"] and done[0]["status"] == gpu_check.INTERRUPTED
    assert (tmp_path / "child.pid.int").exists()  # the step got the Ctrl-C itself
    assert not (tmp_path / "two.txt").exists()
