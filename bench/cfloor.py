"""The C floors (bench/csrc/*.c), each built once with cffi and cached by the hash of its source,
its declarations, the flags, what -march=native means to this compiler on this CPU, the
compiler's version and the Python version (in the twinbench compile cache, not the repository)."""
from __future__ import annotations

import hashlib
import importlib.util
import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from common.environment import cc_version, compile_cache_dir

CSRC = Path(__file__).with_name("csrc")
# Each unit: its source files (concatenated, in order, into one translation unit) and the C
# function it exports (cffi's declarations).
UNITS = {
    "conf1": (("vectors.c", "conf1_epoch.c"), """void conf1_epoch(float *w1t, float *b1, float *w2, float *b2, const float *x,
        const int64_t *y, const int64_t *order, int64_t n, int64_t d_in, int64_t hid, int64_t k_out, float lr,
        double *loss_sum, int64_t *correct);"""),
    "conf5": (("vectors.c", "conf5_hidden.c", "conf5_epoch.c"), """void conf5_epoch(float *w1t, float *b1, float *w2, float *b2, float *moments,
        int64_t *step, const float *x, const int64_t *y, const int64_t *order, int64_t n, int64_t batch,
        int64_t d_in, int64_t hid, int64_t k_out, double lr, double beta_1, double beta_2, float eps,
        double *loss_sum, int64_t *correct);"""),
}
# -ffast-math: reductions in any order (as the frameworks' kernels do) and libmvec's tanhf/expf;
# -march=native, so the CPU is part of the cache key.
FLAGS = ["-O3", "-march=native", "-ffast-math", "-std=gnu99"]
_LOADED: dict[str, tuple] = {}


class CFloorUnavailable(RuntimeError):
    """No C compiler (or cffi) to build the floor with; the message says which."""


@functools.cache
def native_target() -> str:
    """What the compiler makes of -march=native here: its version line and every target option it
    resolves (gcc -Q --help=target), so a build is keyed by the instructions it may use, not by
    the CPU's name. CFloorUnavailable without a compiler."""
    cc, version = os.environ.get("CC", "gcc"), cc_version()
    try:
        if version is None:
            raise OSError("not found")
        target = subprocess.run([cc, *FLAGS, "-Q", "--help=target"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CFloorUnavailable(f"no C compiler to build the floor with ({cc}: {exc})") from None
    return version + "\n" + target.stdout


def cache_dir() -> Path:
    """cfloor/ in the compile cache (common.environment.compile_cache_dir)."""
    return compile_cache_dir() / "cfloor"


def load(unit: str):
    """(ffi, lib) of one compiled unit of bench/csrc (a key of UNITS), building it on first use."""
    if unit in _LOADED:
        return _LOADED[unit]
    try:
        import cffi
    except ImportError as exc:
        raise CFloorUnavailable(f"cffi is not installed ({exc})") from None
    files, cdef = UNITS[unit]
    source = "\n".join(f'#line 1 "{f}"\n' + (CSRC / f).read_text() for f in files)
    key = "\n".join([source, cdef, *FLAGS, native_target(), sys.version, cffi.__version__])
    name = f"_twinbench_cfloor_{unit}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    where = cache_dir()
    built = next(where.glob(f"{name}*.so"), None) if where.is_dir() else None
    if built is None:
        built = _build(cffi, name, source, cdef, where)
    spec = importlib.util.spec_from_file_location(name, built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _LOADED[unit] = module.ffi, module.lib
    return _LOADED[unit]


def _build(cffi, name: str, source: str, cdef: str, where: Path) -> Path:
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, source, extra_compile_args=FLAGS, libraries=["m"])
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        try:
            out = Path(ffi.compile(tmpdir=tmp, verbose=False))
        except Exception as exc:  # noqa: BLE001 - distutils/setuptools raise several kinds
            raise CFloorUnavailable(f"building the C floor failed: {type(exc).__name__}: {exc}") from None
        built = where / out.name
        os.replace(out, built)  # atomic: a concurrent build leaves one complete file
    return built


def _pointers(ffi, *arrays: np.ndarray) -> list:
    """C pointers to contiguous float32 / int64 / float64 arrays (checked: the C code trusts them)."""
    names = {np.dtype(np.float32): "float *", np.dtype(np.int64): "int64_t *", np.dtype(np.float64): "double *"}
    for a in arrays:
        assert a.dtype in names and a.flags.c_contiguous, (a.dtype, a.flags.c_contiguous)
    return [ffi.cast(names[a.dtype], a.ctypes.data) for a in arrays]


def conf1_epoch(w1, b1, w2, b2, x, y, order, lr: float) -> tuple[float, int]:
    """Run the conf1 C epoch on numpy arrays, updating the weights in place (float32 weights and x,
    int64 y and order; w1 canonical (in, out): the C loop takes it transposed, copied back after)."""
    ffi, lib = load("conf1")
    w1t = np.ascontiguousarray(w1.T)
    loss, correct = ffi.new("double *"), ffi.new("int64_t *")
    lib.conf1_epoch(*_pointers(ffi, w1t, b1, w2, b2, x, y, order), len(order), w1.shape[0], w1.shape[1],
                    w2.shape[1], float(lr), loss, correct)
    w1[...] = w1t.T
    return float(loss[0]), int(correct[0])


def conf5_epoch(w1, b1, w2, b2, moments: np.ndarray, step: np.ndarray, x, y, order, batch: int, opt) -> \
        tuple[float, int]:
    """Run the conf5 C epoch (Adam, `opt` its settings) on numpy arrays, updating in place the weights,
    `moments` (2, n_weights) float32: m then v of hidden/kernel transposed, hidden/bias, output/kernel,
    output/bias, flattened and concatenated) and `step` (int64, updates so far). w1 is canonical
    (in, out); the C loop takes it transposed, copied back after."""
    ffi, lib = load("conf5")
    w1t = np.ascontiguousarray(w1.T)
    loss, correct = ffi.new("double *"), ffi.new("int64_t *")
    lib.conf5_epoch(*_pointers(ffi, w1t, b1, w2, b2, moments, step, x, y, order), len(order), int(batch),
                    w1.shape[0], w1.shape[1], w2.shape[1], float(opt.learning_rate), float(opt.beta_1),
                    float(opt.beta_2), float(opt.epsilon), loss, correct)
    w1[...] = w1t.T
    return float(loss[0]), int(correct[0])
