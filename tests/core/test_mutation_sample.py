"""The mutation report's seeded sample: which mutants it holds, and the name patterns that ask
mutmut for exactly those."""
from __future__ import annotations

from fnmatch import fnmatch

from parity_tests import mutation_report as mr


def _sampled(digits: list[str], module: str = "torch_impl.fast.x*") -> set[int]:
    """The mutant numbers 1..999 of one function that the patterns select."""
    names = [f"torch_impl.fast.x_fit__mutmut_{n}" for n in range(1, 1000)]
    return {int(n.rsplit("_", 1)[1]) for n in names if any(fnmatch(n, p) for p in mr.name_patterns(module, digits))}


def test_tenths_are_one_digit_endings():
    digits = mr.sample_digits(0.2, 0)
    assert len(digits) == 2 and all(len(d) == 1 for d in digits)
    assert digits == mr.sample_digits(0.2, 0) != mr.sample_digits(0.2, 1)


def test_hundredths_are_two_digit_endings_and_patterns_match_the_sample():
    digits = mr.sample_digits(0.03, 0)
    assert len(digits) == 3 and all(len(d) == 2 for d in digits)
    chosen = _sampled(digits)
    assert chosen == {n for n in range(1, 1000) if mr.in_sample(f"m__mutmut_{n}", digits)}
    assert len(chosen) == 30  # 3 in each hundred


def test_a_leading_zero_ending_holds_the_one_digit_mutant():
    assert _sampled(["07"]) == {7, *range(107, 1000, 100)}
    assert mr.in_sample("m__mutmut_7", ["07"]) and not mr.in_sample("m__mutmut_70", ["07"])
    assert _sampled(["00"]) == set(range(100, 1000, 100))
    assert _sampled(["3"]) == set(range(3, 1000, 10))
