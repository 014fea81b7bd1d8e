"""Tiers: the ordered ways a fast path can build its epoch, public APIs first, and the one
fall-back that walks them (both frameworks' `fast.compile_epoch` use it).

A tier is a name and a `build()` that returns the compiled epoch or raises. A tier may say
why it does not apply here (`unavailable`: a device, a framework version outside an
allow-list, the tuned tier switched off) and is then passed over without a word; a tier
that fails is dropped with one RuntimeWarning naming it, the reason and the tier tried
next. A failed prerequisite that several tiers share (`Unmet`: tracing the step) drops
all of them with one warning. The last tier of each list (the book's own step) needs no
compiler and does not fail.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable



class Unmet(Exception):
    """A prerequisite that `needs` names (e.g. "trace") failed; `reason` says how."""

    def __init__(self, prerequisite: str, reason: str):
        super().__init__(f"{prerequisite}: {reason}")
        self.prerequisite, self.reason = prerequisite, reason


@dataclass(frozen=True)
class Tier:
    """One way to build a fast epoch: `build()` returns it or raises."""

    name: str
    build: Callable[[], object]
    unavailable: Callable[[], str | None] = lambda: None  # why it does not apply here, or None
    needs: frozenset = field(default_factory=frozenset)  # prerequisites (see Unmet)


def first_working(tiers: list[Tier], who: str) -> tuple[object, str]:
    """(the first tier's build that works, its name), in order; one warning per failure."""
    unmet: set[str] = set()
    candidates = [t for t in tiers if t.unavailable() is None]
    for i, tier in enumerate(candidates):
        if tier.needs & unmet:
            continue  # its prerequisite failed: said once already
        try:
            return tier.build(), tier.name
        except Unmet as exc:
            unmet.add(exc.prerequisite)
            dropped = [t.name for t in candidates[i:] if exc.prerequisite in t.needs]
            warnings.warn(f"{who}: {exc.prerequisite} failed ({exc.reason}); tiers {', '.join(dropped)} dropped, "
                          f"trying {_next(candidates[i + 1:], unmet)!r}", RuntimeWarning, stacklevel=3)
        except Exception as exc:  # noqa: BLE001  any tier a compiler cannot take: the next one
            warnings.warn(f"{who}: tier {tier.name!r} failed ({type(exc).__name__}: {_first_line(exc)}); "
                          f"trying {_next(candidates[i + 1:], unmet)!r}", RuntimeWarning, stacklevel=3)
    raise RuntimeError(f"{who}: no tier could build the epoch ({', '.join(t.name for t in tiers)})")


def _next(rest: list[Tier], unmet: set[str]) -> str | None:
    return next((t.name for t in rest if not t.needs & unmet), None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no message"
