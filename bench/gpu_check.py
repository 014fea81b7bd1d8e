"""The GPU check in one command: PyTorch's CUDA benchmark rows (and the JAX floors), the CUDA
parity tests and the small-model map, within a time budget, on a machine with no network and
no TensorFlow (PyTorch only is enough), reading MNIST from $KERAS_HOME/datasets/mnist.npz.

    KERAS_HOME=.gpu/keras python -m bench.gpu_check --out bench/results/cuda   # about 6 minutes

Each step runs in a process of its own with its share of what is left of the budget; a step
that overruns it is stopped and recorded as such. Ctrl-C is passed on to the running step (the
benchmark keeps its finished rows), and the summary says where the check stopped. Results: <out>/rows/*.json, latest.md and
.json (the CUDA rows), parity.txt, gpu_defaults.json, batch_map.{json,md,png}, and
summary.md with each GPU target met or not met. `--device cpu` runs the same steps on the
CPU, to try the script where there is no GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = "1,8,64,256,1024"
INTERRUPTED = "interrupted (Ctrl-C)"


def steps(device: str, out: Path) -> list[tuple[str, list[str], float]]:
    """(name, command, share of the budget) in the order they run, what matters most first (the
    benchmark's rows write their files as they finish, the map after every point)."""
    bench = [sys.executable, "-m", "twinbench", "bench", "--out", str(out)]
    rows = [*bench, "--device", device]
    return [("fast rows and floors", [*rows, "--only", "torch-fast-*,floor-*", "--rounds", "3", "--overwrite"], 0.35),
            ("parity", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", device,
                        "parity_tests/test_presets.py", "parity_tests/test_trajectories.py",
                        "parity_tests/test_fast.py", "parity_tests/test_gpu_defaults.py"], 0.20),
            ("small-model map", [*bench, "--batch-sizes", SIZES, "--device", "all"], 0.25),
            ("book rows", [*rows, "--only", "torch-book-*", "--rounds", "1", "--book-conf1-examples", "3000",
                           "--no-startup", "--resume"], 0.20)]


def run(device: str, out: Path, budget: float) -> list[dict]:
    """Every step within its share of what is left; a record per step."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TWINBENCH_GPU_RESULTS": str(out), "PYTHONUNBUFFERED": "1"}
    began, done = time.perf_counter(), []
    plan = steps(device, out)
    for k, (name, cmd, share) in enumerate(plan):
        left = budget - (time.perf_counter() - began)
        limit = left * share / sum(s for *_, s in plan[k:])
        print(f"gpu_check: {name} (up to {limit:.0f} s): {' '.join(cmd[2:])}", flush=True)
        start = time.perf_counter()
        try:
            status = step(cmd, env, limit, out / f"{name.replace(' ', '_')}.txt")
        except KeyboardInterrupt:  # the steps' files stay; the summary says where it stopped
            status = INTERRUPTED
        done.append({"step": name, "status": status, "seconds": round(time.perf_counter() - start, 1)})
        print(f"gpu_check: {name}: {status} in {done[-1]['seconds']} s", flush=True)
        if status == INTERRUPTED:
            break
    return done


def step(cmd: list[str], env: dict, limit: float, log: Path) -> str:
    """Run one step, its output into `log`; stopped with everything it started when over `limit`."""
    import signal
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=max(limit, 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own processes too (start-up runs, Dask workers)
            proc.wait()
            return f"stopped at its {limit:.0f} s share of the budget"
        except KeyboardInterrupt:  # a session of its own does not get the terminal's Ctrl-C: pass it on
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait()
            raise
    return "ok" if code == 0 else f"exit {code}"


def summary(out: Path, done: list[dict], device: str = "cuda") -> str:
    """summary.md: the machine, each step, and each target of `device`'s rows met or not (from latest.json)."""
    latest = json.loads((out / "latest.json").read_text()) if (out / "latest.json").exists() else {}
    env = latest.get("environment", {})
    torch_env = env.get("torch", {}) if isinstance(env.get("torch"), dict) else {}
    lines = ["# GPU check", "", f"{torch_env.get('gpu') or 'no GPU'} · torch {torch_env.get('version', '?')} "
             f"(CUDA {torch_env.get('cuda')}) · Python {env.get('python', '?')} · {env.get('date', '')} · "
             f"commit {str(env.get('git_commit', ''))[:7]}", "", "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {d['step']} | {d['status']} | {d['seconds']} |" for d in done]
    lines += ["", "| row | s/epoch | target | met | start-up (warm <= steady + 3 s, cold <= 8 s) | x floor |",
              "|---|---|---|---|---|---|"]
    for r in latest.get("rows", []):
        if r["row"].endswith(f"-{device}") and r.get("target") is not None:
            median = f"{r['median']:.3g}" if r.get("median") else r.get("status", "—")
            x = f"{r['x_floor']:.1f}x" if r.get("x_floor") else "—"
            lines.append(f"| {r['row']} | {median} | {r['target']:g} | {r['met']} | {r['startup_met']} | {x} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "cuda"), help="results directory")
    p.add_argument("--budget", type=float, default=330.0, help="seconds for all the steps (default 330)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: try the script without a GPU")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    done = run(args.device, out, args.budget)
    text = summary(out, done, args.device)
    (out / "summary.md").write_text(text)
    print(text)
    if done and done[-1]["status"] == INTERRUPTED:
        return 130
    return 0 if all(d["status"] == "ok" for d in done) else 1


if __name__ == "__main__":
    sys.exit(main())
