"""The machine a number was measured on: CPU, threads, commit, date, Python and numpy."""
from __future__ import annotations

import ctypes
import datetime
import functools
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_cache_dir() -> Path:
    """Where the fast paths keep compiled code between processes: $TWINBENCH_COMPILE_CACHE, else
    compile/ under the twinbench cache (common.data.cache_dir)."""
    if os.environ.get("TWINBENCH_COMPILE_CACHE"):
        return Path(os.environ["TWINBENCH_COMPILE_CACHE"])
    from common.data import cache_dir
    return cache_dir() / "compile"


def load_triton_first() -> None:
    """Call before TensorFlow is imported. TF: TensorFlow 2.20+'s wheels load their library with
    RTLD_GLOBAL, so triton's library (3.7+, which PyTorch's CUDA builds install and torch.compile
    imports) loaded after it binds to TF's LLVM and crashes the process (SIGSEGV in its
    initializers; tensorflow/tensorflow#124205). Loaded first, it keeps its own. Nothing happens
    where triton is not installed (PyTorch's CPU builds) or TensorFlow is already loaded."""
    if "tensorflow" in sys.modules or "triton" in sys.modules:
        return
    try:
        spec = importlib.util.find_spec("triton")  # where the package is, without importing it
        for folder in (spec.submodule_search_locations or []) if spec else []:
            library = Path(folder) / "_C" / "libtriton.so"
            if library.exists():
                ctypes.CDLL(str(library), mode=os.RTLD_NOW | os.RTLD_LOCAL)  # as Python's import loads it
    except (ImportError, OSError, ValueError):
        pass  # then as before: TF first, triton's library crashes if torch.compile loads it later


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
