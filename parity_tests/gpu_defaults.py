"""The frameworks' GPU defaults that the parity suite pins, measured (issue: TF32 matmuls, on
by default in TensorFlow on Ampere and later, off in PyTorch's; cuBLAS and cuDNN
determinism): a conf5 trajectory from the canonical weights, per framework on the device,
with each setting on and off, in bits of agreement with the float64 oracle, and whether two
runs with the same setting give the same bits. Run on CUDA by test_gpu_defaults.py (the GPU
check commits the numbers under bench/results/cuda/); the same code runs on the CPU, where
the settings change nothing, in that test's CPU case."""
from __future__ import annotations

import numpy as np

import frameworks
from common import reference as ref
from common.compare import compare_sets
from common.config import load_spec
from common.tolerances import tol
from parity_tests.harness.data import batches
from parity_tests.harness.models import impl

STEPS = 100


def trajectory(fw: str, device: str, steps: int = STEPS) -> dict:
    """conf5's weights after `steps` train_step calls on MNIST batches, from seed 21's weights."""
    spec = load_spec("conf5")
    model = impl(fw).build_model(spec, seed=1, device=device)
    impl(fw).set_weights(model, ref.start_weights(spec, 21))
    for x, y in batches(spec.training.batch_size, steps, 0):
        impl(fw).train_step(model, spec, x.astype(np.float32), y)
    return impl(fw).get_weights(model)


def oracle(steps: int = STEPS) -> dict:
    spec = load_spec("conf5")
    w = ref.start_weights(spec, 21)
    rw, rs = {k: v.astype(np.float64) for k, v in w.items()}, ref.init_state(spec, w)
    for x, y in batches(spec.training.batch_size, steps, 0):
        _, rw, rs = ref.train_step(spec, rw, rs, x, y)
    return rw


def measure(fw: str, device: str, steps: int = STEPS) -> dict:
    """{setting: {bits, within_tolerance, repeatable}} for TF32 off/on (deterministic kernels
    off) and deterministic kernels on, and the framework's own defaults."""
    want = oracle(steps)
    moved = max(float(np.abs(want[k] - ref.start_weights(load_spec("conf5"), 21)[k]).max()) for k in want)
    out = {"framework": fw, "device": device, "steps": steps, "defaults": frameworks.get(fw).GPU_DEFAULTS}
    for name, tf32, deterministic in (("tf32 off", False, False), ("tf32 on", True, False),
                                      ("deterministic, tf32 off", False, True)):
        frameworks.get(fw).set_gpu_numerics(tf32, deterministic)
        runs = [trajectory(fw, device, steps) for _ in range(2)]
        worst, _ = compare_sets(runs[0], want, tol("float32", "trajectory"), scale=moved)
        out[name] = {"bits": round(worst.bits, 1), "within_parity_tolerance": worst.passed,
                     "repeatable": all(np.array_equal(runs[0][k], runs[1][k]) for k in want)}
    frameworks.get(fw).set_gpu_numerics(False, False)  # back to what the parity suite pins
    return out


def main(device: str, steps: int) -> list[dict]:
    """In a process of its own (the settings are process-wide, and TF's determinism stays on):
    twinbench's settings and the parity suite's pinned numerics, then every framework on the device."""
    for fw in frameworks.available():
        frameworks.get(fw).configure()
        frameworks.get(fw).pin_numerics()
    from parity_tests.harness.models import frameworks_on
    return [measure(fw, device, steps) for fw in frameworks_on(device)]


if __name__ == "__main__":
    import json
    import sys
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
