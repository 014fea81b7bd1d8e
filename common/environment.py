"""The machine a number was measured on: CPU, threads, commit, date, Python and numpy."""
from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_cache_dir() -> Path:
    """Where the fast paths keep compiled code between processes: $TWINBENCH_COMPILE_CACHE, else
    compile/ under the twinbench cache (common.data.cache_dir)."""
    if os.environ.get("TWINBENCH_COMPILE_CACHE"):
        return Path(os.environ["TWINBENCH_COMPILE_CACHE"])
    from common.data import cache_dir
    return cache_dir() / "compile"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def git_commit() -> str:
    """The checkout's commit, with '+dirty' when the work tree has changes: read once per
    process, so a run that rewrites tracked files (the benchmark's results) records the
    state it started from when it asks before writing."""
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,  # noqa: E731
                                        timeout=10).stdout.strip()
        commit = run("rev-parse", "HEAD")
        return commit + ("+dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe() -> dict:
    """A JSON-able record of the machine: date, commit, Python, platform, CPU, thread
    variables, numpy. The frameworks' versions come from the registry (frameworks.describe)."""
    env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "git_commit": git_commit(), "python": platform.python_version(), "platform": platform.platform(),
           "cpu": cpu_model(), "cpu_count": os.cpu_count(),
           "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                                        "TF_ENABLE_ONEDNN_OPTS") if k in os.environ}}
    import numpy
    env["numpy"] = numpy.__version__
    return env
