"""Session set-up of the parity suite: numerics pinned before TensorFlow is
imported, the --run-slow opt-in, the run header and the closing summary, and
the rendering of docs/differences.md from the defaults catalogue."""
from __future__ import annotations

import os
import sys

# --- numerics, pinned before the first TensorFlow import of the session ---
_TF_FIRST = "tensorflow" not in sys.modules  # else the variable below comes too late
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # oneDNN fuses/reorders float ops: results vary with the CPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

PIN_ERRORS: list[str] = []  # settings that could not be pinned (the header shows the values in force)
if not _TF_FIRST:
    PIN_ERRORS.append("tensorflow was imported before parity_tests/conftest.py: TF_ENABLE_ONEDNN_OPTS=0 may not apply")
for _pin in (lambda: tf.config.threading.set_intra_op_parallelism_threads(1),  # fixed reduction order
             lambda: tf.config.threading.set_inter_op_parallelism_threads(1),
             lambda: torch.set_num_threads(1),
             lambda: torch.set_num_interop_threads(1)):
    try:
        _pin()
    except RuntimeError as exc:  # the runtime was initialized before this conftest ran
        PIN_ERRORS.append(str(exc).splitlines()[0])
torch.backends.cuda.matmul.allow_tf32 = False  # TF32 matmuls carry a 10-bit mantissa
torch.backends.cudnn.allow_tf32 = False
tf.config.experimental.enable_tensor_float_32_execution(False)  # TF's own TF32 switch (on by default on GPUs)

from parity_tests import catalogue, harness  # noqa: E402


def numerics() -> dict[str, object]:
    """The pinned settings as the libraries report them now."""
    return {
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "tf intra/inter op threads": (tf.config.threading.get_intra_op_parallelism_threads(),
                                      tf.config.threading.get_inter_op_parallelism_threads()),
        "torch threads (intra/interop)": (torch.get_num_threads(), torch.get_num_interop_threads()),
        "torch allow_tf32 (matmul/cudnn)": (torch.backends.cuda.matmul.allow_tf32,
                                            torch.backends.cudnn.allow_tf32),
        "tf tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
    }


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (accuracy parity over full MNIST epochs)")


def pytest_report_header(config):
    import keras
    import numpy as np
    pinned = ", ".join(f"{k}={v}" for k, v in numerics().items())
    lines = [f"twinbench parity: tensorflow {tf.__version__}, keras {keras.__version__}, "
             f"torch {torch.__version__}, numpy {np.__version__}",
             f"numerics pinned: {pinned}"]
    return lines + [f"numerics NOT pinned: {e}" for e in PIN_ERRORS]


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:  # deselected (reported as such), not skipped
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_sessionfinish(session, exitstatus):
    path = catalogue.render_if_complete()
    if path is not None:
        session.config._twinbench_differences = path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tr = terminalreporter
    if not harness.STATS["arrays"] and not harness.CONFIGS:
        return
    tr.section("twinbench parity summary")
    tr.write_line(f"configurations checked: {len(harness.CONFIGS)}; array assertions: "
                  f"{harness.STATS['arrays']} ({harness.STATS['elements']:,} elements)")
    for (dtype, quantity), (ratio, where) in sorted(harness.WORST.items()):
        tr.write_line(f"  worst {dtype:7s} {quantity:10s}: {ratio:8.2e} of its tolerance  ({where})")
    path = getattr(config, "_twinbench_differences", None)
    if path is not None:
        tr.write_line(f"defaults catalogue written to {path}")
    elif catalogue.MEASURED:
        missing = sorted(set(catalogue.IDS) - set(catalogue.MEASURED))
        tr.write_line(f"defaults catalogue not written ({len(missing)} of {len(catalogue.IDS)} entries not measured)")
