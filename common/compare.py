"""The comparison core: how far one tensor (or a set of tensors) is from another.

One implementation for everything that compares runs: the parity suite's
assertions, the benchmark's parity gate and `twinbench diff`. An entry passes
when

    |actual - expected| <= rtol * |expected| + atol * scale + floor

(common.tolerances.Tol; `scale` is the largest |expected| of the compared set).
Besides that verdict, a comparison reports the largest absolute and relative
difference and the *bits of agreement*: how many leading bits of the significand
agree, from the distance in units in the last place (ULPs) in the dtype compared:
24 for equal float32 values, 53 for equal float64 values, 0 for NaN. Per entry,
`bits_of_agreement` counts the ULPs at the entry itself; a Comparison's `bits`
counts the largest difference in ULPs at the scale of the compared set (the largest
magnitude, as the tolerance's atol does), so an entry that is rounding noise around
zero does not read as "no bits agree".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.tolerances import Tol

MANTISSA_BITS = {np.dtype(np.float32): 24, np.dtype(np.float64): 53, np.dtype(np.float16): 11}


@dataclass(frozen=True)
class Comparison:
    """The result of comparing `actual` with `expected` (one tensor or a set)."""

    ratio: float        # worst |a - e| / bound; <= 1 passes (inf for a NaN or a shape mismatch)
    where: str          # the worst entry, both values and its bound ("" when equal)
    max_abs: float      # max |a - e|
    max_rel: float      # max |a - e| / max |e| (scaled relative difference)
    bits: float         # p - log2(1 + max |a - e| / ULP at the set's scale), in [0, p]
    size: int           # entries compared

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0


def ordered_ints(x: np.ndarray) -> np.ndarray:
    """Floats mapped to integers whose order and spacing are those of the floats (one
    step = one ULP; -0 and +0 both map to 0), as float64 for overflow-free differences."""
    x = np.ascontiguousarray(x)
    bits = x.view(np.int32 if x.dtype == np.float32 else np.int64 if x.dtype == np.float64 else np.int16)
    mask = np.iinfo(bits.dtype).max
    ordered = np.where(bits >= 0, bits.astype(np.float64), -(bits & mask).astype(np.float64))
    return ordered


def bits_of_agreement(actual, expected, dtype=None) -> np.ndarray:
    """Per entry, how many leading significand bits agree in `dtype` (default: the coarser of
    the two): p - log2(1 + ULP distance), clipped to [0, p]; 0 where either is NaN."""
    a, e = np.asarray(actual), np.asarray(expected)
    dtype = np.dtype(dtype or coarser_dtype(a, e))
    p = MANTISSA_BITS[dtype]
    a, e = a.astype(dtype), e.astype(dtype)
    ulps = np.abs(ordered_ints(a) - ordered_ints(e))
    with np.errstate(invalid="ignore"):
        bits = np.clip(p - np.log2(1.0 + ulps), 0.0, p)
    return np.where(np.isnan(a) | np.isnan(e), 0.0, bits)


def compare(actual, expected, t: Tol, scale: float | None = None, name: str = "value",
            dtype=None, equal_nan: bool = False) -> Comparison:
    """Compare one array with another (see the module docstring); scale defaults to max |e|.
    equal_nan: NaN where both have NaN counts as agreement (two runs that diverged alike)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Comparison(float("inf"), f"{name}: shape {a.shape} != {e.shape}", float("inf"),
                          float("inf"), 0.0, int(e.size))
    if scale is None:
        scale = float(np.max(np.abs(e))) if e.size else 0.0
    err = np.abs(a - e)
    bound = t.rtol * np.abs(e) + t.atol * scale + t.floor
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / np.where(bound > 0, bound, np.inf))
    same = (a == e) | (np.isnan(a) & np.isnan(e)) if equal_nan else (a == e)
    ratio = np.where((np.isfinite(a) & np.isfinite(e)) | same, np.nan_to_num(ratio, nan=0.0) if equal_nan else ratio,
                     np.inf)
    if not e.size:
        return Comparison(0.0, "", 0.0, 0.0, 53.0, 0)
    i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    worst = float(ratio[i])
    where = "" if worst == 0 else (
        f"{name}{list(map(int, i))}: actual {a[i]!r}, expected {e[i]!r}, |diff| {err[i]:.3g} "
        f"{'>' if worst > 1 else '<='} bound {bound[i]:.3g}"
        f" (rtol {t.rtol:g}, atol {t.atol:g} x scale {scale:.3g}, floor {t.floor:g})")
    max_abs = float(np.max(err)) if np.all(np.isfinite(err)) else float("inf")
    top = float(np.max(np.abs(e)))
    max_rel = max_abs / top if top > 0 else (0.0 if max_abs == 0 else float("inf"))
    return Comparison(worst, where, max_abs, max_rel, scaled_bits(actual, expected, max(scale, top), dtype),
                      int(e.size))


def coarser_dtype(actual, expected) -> np.dtype:
    """The dtype two arrays are compared in: the coarser of the two (a float32 run against the
    float64 reference is compared in float32)."""
    a, e = np.asarray(actual), np.asarray(expected)
    # dtypes, not arrays: numpy < 2 promotes a 0-d float64 array with float32 by its value, to float32
    return min((np.result_type(a.dtype, np.float32), np.result_type(e.dtype, np.float32)), key=lambda d: d.itemsize)


def scaled_bits(actual, expected, scale: float, dtype=None) -> float:
    """Bits of agreement of the largest difference, in ULPs of `dtype` at `scale`."""
    dtype = np.dtype(dtype or coarser_dtype(actual, expected))
    p = MANTISSA_BITS[dtype]
    a, e = np.asarray(actual, dtype).astype(np.float64), np.asarray(expected, dtype).astype(np.float64)
    if np.any(np.isnan(a) != np.isnan(e)) or not np.all(np.isfinite(a) | (a == e)):
        return 0.0
    both = np.isfinite(a) & np.isfinite(e)
    diff = float(np.max(np.abs(a - e), where=both, initial=0.0))
    if diff == 0:
        return float(p)
    ulp = float(np.spacing(dtype.type(scale))) if scale > 0 else float(np.finfo(dtype).tiny)
    return float(np.clip(p - np.log2(1.0 + diff / ulp), 0.0, p))


def compare_sets(actual: dict, expected: dict, t: Tol, scale: float | None = None,
                 dtype=None, equal_nan: bool = False) -> tuple[Comparison, dict[str, Comparison]]:
    """Compare two dicts of arrays name by name with one scale (the largest |e| of the set):
    (the worst over the set, per-name comparisons). Different names give ratio inf."""
    if sorted(actual) != sorted(expected):
        bad = Comparison(float("inf"), f"names {sorted(actual)} != {sorted(expected)}", float("inf"),
                         float("inf"), 0.0, 0)
        return bad, {}
    if scale is None:
        scale = max((float(np.nanmax(np.abs(np.asarray(v, np.float64)))) for v in expected.values()
                     if np.size(v) and not np.all(np.isnan(v))), default=0.0)
    each = {n: compare(actual[n], expected[n], t, scale, n, dtype, equal_nan) for n in expected}
    return worst_of(each.values()), each


def worst_of(comparisons) -> Comparison:
    """One Comparison summarizing several: the worst ratio (and its entry), the largest
    differences, the fewest bits, the total size."""
    items = list(comparisons)
    if not items:
        return Comparison(0.0, "", 0.0, 0.0, 53.0, 0)
    top = max(items, key=lambda c: c.ratio)
    return Comparison(top.ratio, top.where, max(c.max_abs for c in items), max(c.max_rel for c in items),
                      min(c.bits for c in items), sum(c.size for c in items))


def compare_state(actual: dict, expected: dict, t: Tol, equal_nan: bool = False) -> tuple[Comparison, dict[str, Comparison]]:
    """Two optimizer states in the canonical layout (`<slot>/<weight>`, `step`): the step count
    exactly, and each slot (m, v, velocity, ...) at the scale of its own largest entry, not the
    set's (a step count of 50 in the scale would let Adam's v, ~1e-4, be anything)."""
    if sorted(actual) != sorted(expected):
        return compare_sets(actual, expected, t)
    each: dict[str, Comparison] = {}
    for slot in sorted({n.split("/", 1)[0] for n in expected}):
        names = [n for n in expected if n.split("/", 1)[0] == slot]
        if slot == "step":
            each.update({n: _exactly(actual[n], expected[n], n) for n in names})
        else:
            each.update(compare_sets({n: actual[n] for n in names}, {n: expected[n] for n in names}, t,
                                     equal_nan=equal_nan)[1])
    return worst_of(each.values()), each


def _exactly(actual, expected, name: str) -> Comparison:
    """A count compared exactly: ratio 0 when equal, inf when not."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape == e.shape and np.array_equal(a, e):
        return Comparison(0.0, "", 0.0, 0.0, 53.0, int(e.size))
    return Comparison(float("inf"), f"{name}: actual {a!r}, expected {e!r} (a count: compared exactly)",
                      float("inf"), float("inf"), 0.0, int(e.size))
