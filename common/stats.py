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
    (difference < +margin) and p = max of the two."""
    from scipy import stats
    a, b = np.asarray(a, float), np.asarray(b, float)
    if paired:
        d = a - b
        lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
        upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    else:
        lower = stats.ttest_ind(a + margin, b, equal_var=False, alternative="greater").pvalue
        upper = stats.ttest_ind(a - margin, b, equal_var=False, alternative="less").pvalue
    return {"p_lower": float(lower), "p_upper": float(upper), "p": float(max(lower, upper))}


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
           "tost_p_upper": t["p_upper"], "tost_p": t["p"], "equivalent": bool(t["p"] < alpha)}
    if len(a) > 1 and len(b) > 1:
        w = welch(a, b)
        out.update(welch_t=w["t"], welch_p=w["p"])
    if paired:
        out["interval"] = paired_interval(a, b)
    return out
