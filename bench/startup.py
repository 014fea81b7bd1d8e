"""Start-up of a fresh process: how long the first epoch of a row takes when the process is
new (tracing and compilation included), with empty compilation caches (cold) and with the
caches the cold run left (warm).

    python -m bench.startup tf fast conf1 [cpu|cuda] [threads]   # one fresh process: prints a JSON line

`measure(row)` runs that twice in subprocesses sharing one new cache directory (inductor's
caches for PyTorch, the C floor's build; TensorFlow keeps none), so
"warm" is what a user's second run of the same command gets.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cache_env(cache: Path) -> dict[str, str]:
    """The environment that points every compilation cache at `cache`, the temporary directory
    too (inductor keeps some artefacts, such as precompiled headers, in the system's temporary
    directory whatever its cache directory is)."""
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    return {"TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"), "TWINBENCH_COMPILE_CACHE": str(cache),
            "TMPDIR": str(cache / "tmp"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def measure(framework: str, variant: str, preset: str, device: str = "cpu", threads: int = 1,
            timeout: float = 900) -> dict:
    """{"cold": {...}, "warm": {...}}: first_epoch and steady seconds of two fresh processes, each
    under the run's thread policy (`threads` per framework)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="twinbench-startup-") as tmp:
        env = {**os.environ, **cache_env(Path(tmp)), "PYTHONPATH": str(ROOT)}
        for kind in ("cold", "warm"):
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "bench.startup", framework, variant, preset, device,
                                   str(threads)], env=env,
                                  capture_output=True, text=True, timeout=timeout, cwd=ROOT)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                raise RuntimeError(f"start-up run ({kind}) failed: {done.stderr.strip()[-400:]}")
            out[kind] = {**json.loads(lines[-1]), "process_seconds": time.perf_counter() - began}
    return out


def one_process(framework: str, variant: str, preset: str, device: str = "cpu", threads: str = "1") -> dict:
    """In this (fresh) process: load the data, then time building the model and its first epoch
    (tracing and compilation included), then a second epoch (steady)."""
    import numpy as np

    from common import reference as ref
    from common.config import load_spec
    from common.data import datasets
    import frameworks
    from bench.matrix import PEER, Row
    from bench.threads import apply_policy
    from bench.matrix import Settings
    used = (framework,) if framework in frameworks.NAMES else ()
    apply_policy(Settings(threads=int(threads)), used)  # as `twinbench bench` does when it starts
    spec = load_spec(preset)
    x, y, x_eval, y_eval = datasets(spec)
    start = ref.start_weights(spec, spec.training.seed)
    if framework in ("floor", PEER):
        from bench.measure import make_baseline
        x2, order = np.ascontiguousarray(x.reshape(len(x), -1)), np.arange(len(x))
        t0 = time.perf_counter()
        floor = make_baseline(Row(framework, variant, preset, device), spec, start)
        floor.train_epoch(x2, y, order)
        first = time.perf_counter() - t0
        steady = floor.train_epoch(x2, y, order)["seconds"]
    else:
        api = frameworks.get(framework).variant(variant)
        data = (x, y, x_eval[:1], y_eval[:1])
        t0 = time.perf_counter()
        model = api.build_model(spec, device=device)
        api.set_weights(model, start)
        api.fit(model, spec, data, epochs=1)
        first = time.perf_counter() - t0
        steady = api.fit(model, spec, data, epochs=2, initial_epoch=1)[-1]["seconds"]
    return {"first_epoch": first, "steady_epoch": steady, "startup_overhead": first - steady}


if __name__ == "__main__":
    print(json.dumps(one_process(*sys.argv[1:6])), flush=True)
