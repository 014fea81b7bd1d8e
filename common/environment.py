"""The environment a number was measured in: versions, CPU, GPU, threads, commit, date."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """The checkout's commit, with '+dirty' when the work tree has changes."""
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,  # noqa: E731
                                        timeout=10).stdout.strip()
        commit = run("rev-parse", "HEAD")
        return commit + ("+dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe(frameworks: tuple[str, ...] = ("tf", "torch")) -> dict:
    """A JSON-able record of the machine and the framework versions in use."""
    env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "git_commit": git_commit(), "python": platform.python_version(), "platform": platform.platform(),
           "cpu": cpu_model(), "cpu_count": os.cpu_count(),
           "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                                        "TF_ENABLE_ONEDNN_OPTS") if k in os.environ}}
    import numpy
    env["numpy"] = numpy.__version__
    if "tf" in frameworks:
        import tensorflow as tf
        import keras
        gpus = tf.config.list_physical_devices("GPU")
        env["tensorflow"] = {"version": tf.__version__, "keras": keras.__version__,
                             "gpus": [g.name for g in gpus],
                             "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                             "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    if "torch" in frameworks:
        import torch
        cuda = torch.cuda.is_available()
        env["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "threads": torch.get_num_threads(),
                        "gpu": torch.cuda.get_device_name(0) if cuda else None,
                        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if cuda else None}
    return env
