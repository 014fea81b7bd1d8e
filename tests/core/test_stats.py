"""common.stats: Welch, TOST (Welch and paired) and the paired interval, on numbers whose
answers are known (scipy computes them; these check the wiring: signs, margins, pairing)."""
import numpy as np
import pytest

from common import stats

A = np.array([0.970, 0.971, 0.972, 0.969, 0.973])


def test_tost_says_equivalent_only_within_the_margin():
    assert stats.tost(A, A + 0.0005, 0.005)["p"] < 0.05
    assert stats.tost(A, A + 0.02, 0.005)["p"] > 0.05
    assert stats.tost(A, A - 0.02, 0.005)["p"] > 0.05  # the other side too


def test_paired_tost_uses_the_differences():
    b = A + np.array([0.0005, 0.0, -0.0004, 0.0002, 0.0001])
    assert stats.tost(A, b, 0.005, paired=True)["p"] < 0.05
    assert stats.tost(A, A + [0.006, 0.004, 0.007, 0.005, 0.006], 0.005, paired=True)["p"] > 0.05
    # the seed-to-seed spread cancels in the pairs, not in Welch's test
    spread = np.array([0.95, 0.96, 0.97, 0.98, 0.99])
    assert stats.tost(spread, spread + 0.001, 0.005, paired=True)["p"] < 0.05
    assert stats.tost(spread, spread + 0.001, 0.005)["p"] > 0.05


def test_compare_samples_and_interval():
    same = stats.compare_samples([0.950, 0.951, 0.952], [0.9505, 0.9512, 0.9515], 0.005)
    assert same["equivalent"] and same["welch_p"] > 0.05
    apart = stats.compare_samples([0.95, 0.951, 0.952], [0.96, 0.961, 0.962], 0.005)
    assert not apart["equivalent"] and apart["welch_p"] < 0.05 and apart["difference"] == pytest.approx(-0.01)
    iv = stats.paired_interval([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])
    assert iv["mean"] == pytest.approx(4 / 3) and iv["low"] < 4 / 3 < iv["high"]
    # t(0.975, 2) = 4.3027; sd of (1, 1, 2) = 0.57735; half width = 4.3027 * 0.57735 / sqrt(3)
    assert iv["high"] - iv["mean"] == pytest.approx(4.302653 * 0.5773503 / 3 ** 0.5, rel=1e-5)
    paired = stats.compare_samples([0.95, 0.96], [0.951, 0.961], 0.005, paired=True)
    assert paired["paired"] and paired["interval"]["n"] == 2


def test_paired_tost_with_identical_pairs_says_so():
    """The two frameworks often end every seed on the same accuracy: no spread for a t-test
    (scipy gives NaN), so the verdict is exact and says why."""
    same = stats.tost(A, A, 0.005, paired=True)
    assert same["p"] == 0.0 and same["method"].startswith("exact: every paired difference is +0")
    shifted = stats.tost(A, A - 0.001, 0.005, paired=True)  # a constant difference inside the margin
    assert shifted["p"] == 0.0 and "+0.001" in shifted["method"]
    outside = stats.tost(A, A - 0.006, 0.005, paired=True)
    assert outside["p"] == 1.0
    result = stats.compare_samples(A, A, 0.005, paired=True)
    assert result["equivalent"] and result["tost_method"].startswith("exact")
    assert not np.isnan(result["tost_p"])
