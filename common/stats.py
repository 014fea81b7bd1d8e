"""Statistics of accuracies over seeds: Welch's t-test, TOST equivalence, paired intervals.

One copy of each test, used by the parity suite, the benchmark's seeds study and
`twinbench experiment`. TOST (two one-sided tests) asks whether two means are
*equivalent* within a margin: H0 is |mean(a) - mean(b)| >= margin, rejected when
both one-sided tests reject at level alpha, i.e. when max(p_lower, p_upper) < alpha.
"""
from __future__ import annotations

import numpy as np


def welch(a, b) -> dict:
    """Welch's t-test of mean(a) = mean(b): {"t", "p"}."""
    from scipy import stats
    res = stats.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False)
    return {"t": float(res.statistic), "p": float(res.pvalue)}


def tost(a, b, margin: float, paired: bool = False) -> dict:
    """TOST of H0: |mean(a - b)| >= margin.

    paired: one-sample t-tests on the differences a_i - b_i (same seed, same start);
    else two Welch tests. Returns p_lower (difference > -margin), p_upper
    (difference < +margin), p = max of the two, and `method`. When every paired difference
    is the same number d (the two runs of each seed end equal, or apart by one constant),
    there is no spread to test: the mean difference is d exactly, and each p is 0 or 1 as d
    lies inside the margin or not."""
    from scipy import stats
    a, b = np.asarray(a, float), np.asarray(b, float)
    if paired and _constant(a - b):  # no spread to test: every pair differs by the same amount
        d = float((a - b)[0])
        lower, upper = float(d <= -margin), float(d >= margin)
        return {"p_lower": lower, "p_upper": upper, "p": max(lower, upper),
                "method": f"exact: every paired difference is {d:+.4g} (no spread to test), so the mean is that"}
    if paired:
        d = a - b
        lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
        upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    else:
        lower = stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater").pvalue
        upper = stats.ttest_ind(a - margin, b, equal_var=False, alternative="less").pvalue
    return {"p_lower": float(lower), "p_upper": float(upper), "p": float(max(lower, upper)),
            "method": "paired t-tests on the differences" if paired else "Welch t-tests"}


def _constant(d: np.ndarray) -> bool:
    """All the differences are equal (a t-test of them divides by a zero spread)."""
    return len(d) > 0 and bool(np.all(d == d[0]))


def paired_interval(a, b, level: float = 0.95) -> dict:
    """Mean of the paired differences a_i - b_i with its two-sided t interval."""
    from scipy import stats
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n, "level": level}
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "level": level}


def compare_samples(a, b, margin: float, alpha: float = 0.05, paired: bool = False) -> dict:
    """Everything reported about two samples of final accuracies: the difference of the
    means, Welch's test, TOST (paired or Welch) and, when paired, the 95% interval of
    the mean difference; `equivalent` is TOST's verdict at level alpha."""
    t = tost(a, b, margin, paired=paired)
    out = {"difference": float(np.mean(a) - np.mean(b)), "welch_t": None, "welch_p": None,
           "margin": margin, "alpha": alpha, "paired": paired, "tost_p_lower": t["p_lower"],
           "tost_p_upper": t["p_upper"], "tost_p": t["p"], "tost_method": t["method"],
           "equivalent": bool(t["p"] < alpha)}
    if len(a) > 1 and len(b) > 1:
        w = welch(a, b)
        out.update(welch_t=w["t"], welch_p=w["p"])
    if paired:
        out["interval"] = paired_interval(a, b)
    return out
