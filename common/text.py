"""Numbers and counts in the words a user reads: one formatting of each, for every command."""
from __future__ import annotations


def plural(n: int, word: str) -> str:
    """'1 epoch', '3 epochs', '1,200 steps'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def signed(v: float, digits: int = 4) -> str:
    """+0.0012 / -0.0012, and 0.0000 (never -0.0000) for what rounds to zero."""
    text = f"{v:+.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0 else text
