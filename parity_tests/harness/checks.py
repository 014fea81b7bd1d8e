"""Assertions of the parity suite, made through the comparison core (common.compare)
at the tolerances of common.tolerances; each counts what it checked and remembers the
worst passing ratio per (dtype, quantity) for the closing summary."""
from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Iterable

import numpy as np

import frameworks
from common.compare import compare, compare_sets, compare_state
from common.tolerances import KERAS_TRACKED_LOSS, Tol, tol

STATS = {"arrays": 0, "elements": 0}
CONFIGS: set[str] = set()
WORST: dict[tuple[str, str], tuple[float, str]] = defaultdict(lambda: (0.0, ""))  # (dtype, quantity) -> ratio, where


def register_config(cid: str) -> None:
    CONFIGS.add(cid)


def assert_equal(actual: dict, expected: dict, what: str) -> None:
    """Bit-for-bit equality of two canonical dicts (names, shapes, dtypes, values)."""
    assert sorted(actual) == sorted(expected), f"{what}: names {sorted(actual)} != {sorted(expected)}"
    for name in expected:
        a, e = np.asarray(actual[name]), np.asarray(expected[name])
        assert a.shape == e.shape and a.dtype == e.dtype, f"{what}: {name} {a.dtype}{a.shape} != {e.dtype}{e.shape}"
        if not np.array_equal(a, e):
            i = np.unravel_index(np.argmax(a != e), a.shape) if a.ndim else ()
            raise AssertionError(f"{what}: {name}{list(i)}: {a[i]!r} != {e[i]!r}")
        STATS["arrays"] += 1
        STATS["elements"] += e.size


def assert_close(actual, expected, dtype: str, quantity: str, what: str,
                 scale: float | None = None, t: Tol | None = None) -> float:
    """Entry-wise |a - e| <= rtol |e| + atol * scale + floor for one array or a dict of
    arrays (scale: largest |e| in the set unless given; optimizer state, quantity "state*": the
    step count exactly and each slot at its own largest |e|, common.compare.compare_state). Returns the worst ratio
    |a - e| / bound; on failure names the worst entry and both values."""
    t = t or tol(dtype, quantity)
    if isinstance(expected, dict) and quantity.startswith("state"):  # the step exactly, each slot at its own scale
        worst, each = compare_state(actual, expected, t)
        count, elements = len(each), sum(c.size for c in each.values())
    elif isinstance(expected, dict):
        worst, each = compare_sets(actual, expected, t, scale)
        count, elements = len(each), sum(c.size for c in each.values())
    else:
        worst = compare(actual, expected, t, scale)
        count, elements = 1, worst.size
    STATS["arrays"] += count
    STATS["elements"] += elements
    key = (dtype, quantity)
    if WORST[key][0] < worst.ratio <= 1.0:  # the headroom of passing comparisons
        WORST[key] = (worst.ratio, what)
    assert worst.passed, f"{what} [{dtype} {quantity}]: worst entry {worst.where}"
    return worst.ratio


def scale_of(r) -> float:
    """The largest magnitude in one array or a dict of arrays (a comparison's scale)."""
    if isinstance(r, dict):
        return max((float(np.max(np.abs(v))) for v in r.values() if np.size(v)), default=0.0)
    return float(np.max(np.abs(r)))


def three_way(values: dict[str, object], dtype: str, quantity: str, what: str, scale: float | None = None) -> None:
    """Each framework against the reference ("ref"), then the frameworks against each other,
    all with the reference's scale."""
    scale = scale_of(values["ref"]) if scale is None else scale
    present = [fw for fw in values if fw != "ref"]  # the frameworks that ran (installed, on the device)
    for fw in present:
        assert_close(values[fw], values["ref"], dtype, quantity, f"{what}: {fw} vs ref", scale)
    for a, b in itertools.combinations(present, 2):
        assert_close(values[a], values[b], dtype, quantity, f"{what}: {a} vs {b}", scale)


def check_reported_losses(losses: dict[str, float], dtype: str, what: str, quantity: str = "loss") -> None:
    """Losses as the frameworks report them, each in the dtype its framework reports in
    (Keras's come from its float32 Mean tracker even in float64 runs: KERAS_TRACKED_LOSS)."""
    for fw in (frameworks.get(name) for name in losses if name != "ref"):
        reported = fw.reported_loss_dtype(dtype)
        t = KERAS_TRACKED_LOSS if reported != dtype and quantity == "loss" else None
        note = f" ({reported} tracker)" if reported != dtype else ""
        assert_close(losses[fw.name], losses["ref"], reported, quantity, f"{what}: {fw.name}{note} vs ref", t=t)


def update_diff(w0: dict, a: dict, b: dict, names: Iterable[str] | None = None) -> float:
    """max |(a - w0) - (b - w0)| / max |b - w0| over the tensors: how differently two
    runs moved the same starting weights."""
    names = list(names or b)
    num = max(float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64)))) for n in names)
    den = max(float(np.max(np.abs(np.asarray(b[n], np.float64) - np.asarray(w0[n], np.float64)))) for n in names)
    return num / den


def rel_diff(a: dict | np.ndarray, b: dict | np.ndarray) -> float:
    """max |a - b| / max |b| over one array or a dict of arrays."""
    if not isinstance(b, dict):
        a, b = {"v": a}, {"v": b}
    num = max(float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64)))) for n in b)
    return num / max(float(np.max(np.abs(np.asarray(b[n], np.float64)))) for n in b)
