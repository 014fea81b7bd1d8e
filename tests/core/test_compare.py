"""common.compare: the comparison core shared by the parity suite, the gate and `twinbench diff`."""
import numpy as np
import pytest

from common.compare import bits_of_agreement, compare, compare_sets
from common.tolerances import Tol, tol


def test_bits_of_agreement_counts_ulps():
    one = np.float32(1.0)
    assert bits_of_agreement(one, one) == 24
    assert bits_of_agreement(np.float64(1.0), np.float64(1.0)) == 53
    assert bits_of_agreement(one, np.nextafter(one, np.float32(2))) == pytest.approx(23.0)  # 1 ULP apart
    three_ulps = np.float32(1.0) + 3 * np.finfo(np.float32).eps
    assert bits_of_agreement(one, three_ulps) == pytest.approx(22.0)  # 24 - log2(1 + 3)
    assert bits_of_agreement(np.float32(1.0), np.float32(-1.0)) == 0  # far apart
    assert bits_of_agreement(np.float32(0.0), np.float32(-0.0)) == 24
    assert bits_of_agreement(np.float32(np.nan), np.float32(np.nan)) == 0
    # a float32 run against the float64 reference: compared in float32
    assert bits_of_agreement(np.float32(0.1), np.float64(0.1)) == 24


def test_compare_bound_ratio_and_where():
    t = Tol(1e-3, 1e-4, "test")
    e = np.array([1.0, -2.0, 0.0])
    c = compare(e + [5e-4, 0.0, 0.0], e, t)  # bound at 0: 1e-3 + 1e-4 * 2 = 1.2e-3
    assert c.passed and c.ratio == pytest.approx(5e-4 / 1.2e-3)
    bad = compare(e + [0.0, 0.0, 1e-3], e, t)  # at entry 2 the bound is the scaled atol, 2e-4
    assert not bad.passed and bad.ratio == pytest.approx(5.0) and "value[2]" in bad.where
    assert bad.max_abs == pytest.approx(1e-3) and bad.max_rel == pytest.approx(5e-4)
    assert compare(np.array([np.nan]), np.array([1.0]), t).ratio == float("inf")
    assert not compare(np.zeros(3), np.zeros(4), t).passed  # shapes differ


def test_compare_sets_uses_one_scale():
    t = tol("float32", "gradients")
    big, small = np.array([100.0]), np.array([1e-6])
    worst, each = compare_sets({"a": big, "b": small + 1e-4}, {"a": big, "b": small}, t)
    # 1e-4 off a tiny entry is within atol 2e-5 x scale 100 = 2e-3
    assert worst.passed and set(each) == {"a", "b"}
    assert not compare_sets({"a": big}, {"a": big, "b": small}, t)[0].passed


def test_comparison_bits_are_counted_at_the_scale_of_the_set():
    e = np.array([1.0, 1e-9], np.float32)
    a = e.copy()
    a[1] = -1e-9  # noise around zero: opposite sign, but far below the set's scale
    c = compare(a, e, tol("float32", "gradients"))
    assert bits_of_agreement(a, e)[1] == 0 and c.bits > 23  # per entry 0 bits; at the scale ~24
    b = e.copy()
    b[0] = np.nextafter(np.float32(1.0), np.float32(2)) + np.finfo(np.float32).eps  # 2 ULPs off at 1.0
    assert compare(b, e, tol("float32", "gradients")).bits == pytest.approx(24 - np.log2(3))
    assert compare(e.astype(np.float64), e.astype(np.float64), tol("float64", "forward")).bits == 53
    nan = compare(np.array([np.nan, 1.0]), np.array([1.0, 1.0]), tol("float64", "forward"))
    assert nan.bits == 0 and not nan.passed
