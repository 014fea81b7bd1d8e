"""The machine a number was measured on: CPU, threads, commit, date, Python and numpy."""
from __future__ import annotations

import ctypes
import datetime
import functools
import hashlib
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


# The CPU flags a figure is recorded with: the vector extensions compiled code may use
SIMD_PREFIXES = ("sse", "ssse", "avx", "amx", "fma", "f16c", "bmi", "vaes", "vpclmul", "gfni")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        return fields
    except OSError:
        return {}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one). Not an identity: two CPUs
    of different families and vector extensions may both say "AMD EPYC" (cpu_info, cpu_key)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


@functools.cache
def cpu_info() -> dict:
    """What a figure's CPU is: vendor, family, model, stepping, model name, its SIMD flags (the
    vector extensions: avx2, avx512f, amx_*, ...), logical cores and the cores this process may use."""
    info = _cpuinfo()
    flags = info.get("flags", info.get("Features", "")).split()
    number = lambda key: int(info[key], 0) if info.get(key, "").strip().isdigit() else info.get(key)  # noqa: E731
    return {"vendor": info.get("vendor_id", platform.machine()), "family": number("cpu family"),
            "model": number("model"), "stepping": number("stepping"), "model_name": cpu_model(),
            "simd": sorted(f for f in flags if f.startswith(SIMD_PREFIXES)), "logical_cores": os.cpu_count(),
            "usable_cores": usable_cores()}


def usable_cores() -> int:
    """The cores this process may run on (its affinity; all of them where the OS has none)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@functools.cache
def cpu_key() -> str:
    """What makes compiled code valid on this CPU, as a short hash for cache keys: vendor,
    family, model, stepping and every flag (a cache shared by two machines that both say "AMD
    EPYC", one with AVX-512 and one without, must not hand one the other's code)."""
    info = _cpuinfo()
    what = [platform.machine(), *(info.get(k, "") for k in ("vendor_id", "cpu family", "model", "stepping")),
            " ".join(sorted(info.get("flags", info.get("Features", "")).split()))]
    return hashlib.sha256("\n".join(what).encode()).hexdigest()[:16]


def cpu_line(info: dict | None = None) -> str:
    """One line naming the CPU: model name, family/model/stepping and its widest vector extensions."""
    info = info or cpu_info()
    simd = set(info.get("simd") or [])
    widest = [f for f in ("avx512f", "avx2", "amx_tile") if f in simd] or ["no AVX2"]
    return (f"{info.get('model_name')} (family {info.get('family')} model {info.get('model')} stepping "
            f"{info.get('stepping')}; {', '.join(widest)}; {info.get('logical_cores')} logical cores)")


def _git(*args: str, timeout: float = 10) -> str:
    """git's output, unstripped (porcelain lines start with a space that matters)."""
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout).stdout


@functools.cache
def git_commit() -> str:
    """The checkout's commit, with '+dirty' when tracked files other than results have changes
    (changed_files): read once per process."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        return commit + ("+dirty" if changed_files() else "") if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# Folders of results, not of code: a measurement that rewrites them (the benchmark's, the experiment's)
# leaves the checkout's code as its commit has it
RESULTS = ("bench/results/", "docs/experiment/")


def changed_files() -> list[str]:
    """The tracked files outside the results folders (RESULTS) whose content differs from the
    commit (staged or not), repository-relative; [] outside a git checkout."""
    try:
        lines = _git("status", "--porcelain", "--untracked-files=no").splitlines()
    except (OSError, subprocess.SubprocessError):
        return []
    paths = [line[3:].split(" -> ")[-1] for line in lines if line.strip()]
    return [p for p in paths if not p.startswith(RESULTS)]


def git_diff() -> str:
    """`git diff HEAD` of the tracked files (what a run on a changed tree ran, beside its commit)."""
    try:
        return _git("diff", "HEAD", timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.cache
def cc_version() -> str | None:
    """The first line of `$CC --version` (gcc by default): the C compiler of the C floors and of
    PyTorch's inductor; None when there is none."""
    cc = os.environ.get("CC", "gcc")
    try:
        lines = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return lines[0] if lines else cc


def compilers() -> dict:
    """The compilers behind the numbers: the C compiler (the C floor; PyTorch's inductor builds C++
    with the same toolchain) and the versions of JAX's (jaxlib) and cffi, where installed. XLA
    comes with TensorFlow (its version is TF's)."""
    from importlib import metadata
    out = {"cc": cc_version() or f"{os.environ.get('CC', 'gcc')}: not found"}
    for package in ("jax", "jaxlib", "cffi"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def describe() -> dict:
    """A JSON-able record of the machine: date, commit, Python, platform, CPU (what it is and its
    SIMD flags), thread variables, numpy and the compilers. The frameworks' versions come from the
    registry (frameworks.describe)."""
    env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "git_commit": git_commit(), "python": platform.python_version(), "platform": platform.platform(),
           "cpu": cpu_model(), "cpu_info": cpu_info(), "cpu_count": os.cpu_count(), "compilers": compilers(),
           "threads_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "XLA_FLAGS",
                                                        "TF_ENABLE_ONEDNN_OPTS") if k in os.environ}}
    import numpy
    env["numpy"] = numpy.__version__
    return env
