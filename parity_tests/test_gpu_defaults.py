"""The GPU defaults the parity suite pins (TF32, determinism), measured on every device
present (parity_tests/gpu_defaults.py, in a process of its own): on the CPU the settings
change nothing, which tests the measurement; on CUDA the numbers are what the GPU check
reports, written to $TWINBENCH_GPU_RESULTS/gpu_defaults.json when that is set."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parity_tests import harness as H

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("device", H.devices())
def test_gpu_defaults_measured(device: str):
    steps = "100" if device == "cuda" else "10"
    done = subprocess.run([sys.executable, "-m", "parity_tests.gpu_defaults", device, steps], cwd=ROOT, text=True,
                          capture_output=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["framework"] for r in results] == list(H.frameworks_on(device))
    for r in results:
        # with TF32 off (the parity suite's setting) the trajectory stays within the float32 parity tolerance
        assert r["tf32 off"]["within_parity_tolerance"], r
        assert r["deterministic, tf32 off"]["repeatable"], r  # deterministic kernels: the same bits twice
        if device == "cpu":  # no TF32 on a CPU: the setting changes nothing
            assert r["tf32 on"]["bits"] == r["tf32 off"]["bits"], r
    where = os.environ.get("TWINBENCH_GPU_RESULTS")
    if where and device == "cuda":
        from common.files import write_json
        write_json(Path(where) / "gpu_defaults.json", {"results": results})
