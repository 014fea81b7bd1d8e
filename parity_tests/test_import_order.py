"""TensorFlow, then torch.compile's imports, in one process: where PyTorch is a CUDA build it
installs triton, whose library crashes the process when it loads after TensorFlow 2.20+
(common.environment.load_triton_first). A fresh process each: TensorFlow loads once."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="no triton (PyTorch's CPU build): nothing to load")
@pytest.mark.parametrize("first", [
    "import frameworks; frameworks.get('tf').pin_numerics()",  # how the parity suite and the CLI load TF
    "import tf_impl",
])
def test_torch_compile_imports_after_tensorflow(first: str):
    script = f"{first}\nimport sys, torch._dynamo\nprint('loaded', 'tensorflow' in sys.modules, 'triton' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "loaded True" in done.stdout, done.stdout
