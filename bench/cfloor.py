"""The C floor (bench/csrc/*.c), built once with cffi and cached by the hash of its source,
its flags and the Python version (in the twinbench compile cache, not the repository)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from common.environment import compile_cache_dir

SOURCE = Path(__file__).with_name("csrc") / "conf1_epoch.c"
CDEF = """void conf1_epoch(float *w1t, float *b1, float *w2, float *b2, const float *x, const int64_t *y,
                       const int64_t *order, int64_t n, int64_t d_in, int64_t hid, int64_t k_out, float lr,
                       double *loss_sum, int64_t *correct);"""
FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-std=c99"]
_LIB = None


class CFloorUnavailable(RuntimeError):
    """No C compiler (or cffi) to build the floor with; the message says which."""


def cache_dir() -> Path:
    """cfloor/ in the compile cache (common.environment.compile_cache_dir)."""
    return compile_cache_dir() / "cfloor"


def load():
    """(ffi, lib) of the compiled floor, building it on first use."""
    global _LIB
    if _LIB is not None:
        return _LIB
    try:
        import cffi
    except ImportError as exc:
        raise CFloorUnavailable(f"cffi is not installed ({exc})") from None
    source = SOURCE.read_text()
    key = hashlib.sha256("\n".join([source, CDEF, *FLAGS, sys.version, cffi.__version__]).encode()).hexdigest()[:16]
    name = f"_twinbench_cfloor_{key}"
    where = cache_dir()
    built = next(where.glob(f"{name}*.so"), None) if where.is_dir() else None
    if built is None:
        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        ffi.set_source(name, source, extra_compile_args=FLAGS, libraries=["m"])
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=where) as tmp:
            try:
                out = Path(ffi.compile(tmpdir=tmp, verbose=False))
            except Exception as exc:  # noqa: BLE001 - distutils/setuptools raise several kinds
                raise CFloorUnavailable(f"building the C floor failed: {type(exc).__name__}: {exc}") from None
            built = where / out.name
            os.replace(out, built)  # atomic: a concurrent build leaves one complete file
    spec = importlib.util.spec_from_file_location(name, built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _LIB = module.ffi, module.lib
    return _LIB


def conf1_epoch(w1, b1, w2, b2, x, y, order, lr: float) -> tuple[float, int]:
    """Run the C epoch on numpy arrays, updating the weights in place (float32 weights and x, int64
    y and order; w1 canonical (in, out): the C loop takes it transposed, copied back after)."""
    import numpy as np
    ffi, lib = load()
    w1t = np.ascontiguousarray(w1.T)
    loss, correct = ffi.new("double *"), ffi.new("int64_t *")
    ptr = lambda a, t: ffi.cast(t, a.ctypes.data)  # noqa: E731
    for a, dt in ((w1t, np.float32), (b1, np.float32), (w2, np.float32), (b2, np.float32), (x, np.float32),
                  (y, np.int64), (order, np.int64)):
        assert a.dtype == dt and a.flags.c_contiguous, (a.dtype, dt)
    lib.conf1_epoch(ptr(w1t, "float *"), ptr(b1, "float *"), ptr(w2, "float *"), ptr(b2, "float *"),
                    ptr(x, "float *"), ptr(y, "int64_t *"), ptr(order, "int64_t *"), len(order), w1.shape[0],
                    w1.shape[1], w2.shape[1], float(lr), loss, correct)
    w1[...] = w1t.T
    return float(loss[0]), int(correct[0])
