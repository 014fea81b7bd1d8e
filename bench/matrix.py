"""The benchmark matrix: which rows exist, their targets, and the run's settings.

A row is framework x variant x preset x device, id `tf-book-conf1-cpu`, plus one floor row per
preset and device (`floor-conf1-cpu`: the C floor, bench.floor; `floor-conf1-cuda`: the JAX
program, bench.floor_jax) and, on the CPU, one JAX peer row per preset (`jax-conf1-cpu`: the same
JAX program, what a user who picks JAX gets; on CUDA the floor is that program).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import frameworks

FRAMEWORKS = frameworks.NAMES
VARIANTS = frameworks.VARIANTS
PRESETS = ("conf1", "conf5")
DEVICES = ("cpu", "cuda")
FULL_EPOCH = 60_000
PEER = "jax"

# Targets in seconds per epoch (median). Book rows have none: they are the book's code.
# CUDA: issue 24's, set on an NVIDIA H200 (on another card, compare with the same run's floors).
TARGETS = {("fast", "conf1", "cpu"): 1.0, ("fast", "conf5", "cpu"): 0.5,
           ("fast", "conf1", "cuda"): 0.65, ("fast", "conf5", "cuda"): 0.035}
FLOOR_TARGETS = {("fast", "conf1", "cpu"): 1.3, ("fast", "conf5", "cpu"): 1.5}  # at most this many floors
WARM_OVER_STEADY = 3.0  # a new process's first fast epoch, warm caches: at most this many seconds over steady
COLD_FIRST_EPOCH = {("torch", "cpu"): 8.0, ("torch", "cuda"): 8.0}  # ...and with empty caches, at most this


@dataclass(frozen=True)
class Row:
    """One benchmark row; framework 'floor' is the floor (variant 'native'), 'jax' the peer (variant 'peer')."""

    framework: str
    variant: str
    preset: str
    device: str

    @property
    def id(self) -> str:
        if self.is_floor or self.is_peer:
            return f"{self.framework}-{self.preset}-{self.device}"
        return f"{self.framework}-{self.variant}-{self.preset}-{self.device}"

    @property
    def is_floor(self) -> bool:
        return self.framework == "floor"

    @property
    def is_peer(self) -> bool:
        """The JAX peer: a framework a user could pick instead, not one twinbench implements."""
        return self.framework == PEER

    @property
    def target(self) -> float | None:
        """Seconds per epoch to meet, or None."""
        return TARGETS.get((self.variant, self.preset, self.device))

    @property
    def floor_target(self) -> float | None:
        """The most times its preset's floor the row may take, or None."""
        return FLOOR_TARGETS.get((self.variant, self.preset, self.device))


def all_rows() -> list[Row]:
    """Every row in run order: the floors, the JAX peers, then each framework's rows (so a crash of
    one framework leaves the other's rows measured or measurable with --resume)."""
    rows = [Row("floor", "native", p, d) for d in DEVICES for p in PRESETS]
    rows += [Row(PEER, "peer", p, "cpu") for p in PRESETS]
    for fw in FRAMEWORKS:
        rows += [Row(fw, v, p, d) for d in DEVICES for v in VARIANTS for p in PRESETS]
    return rows


def select(rows: list[Row], only: str | None = None, device: str = "all") -> list[Row]:
    """Rows on `device` ('cpu', 'cuda' or 'all') whose id matches `only`: comma-separated
    globs (`torch-*-conf5-*`) or plain substrings (`conf5`). Floors follow the presets kept."""
    if device not in (*DEVICES, "all"):
        raise ValueError(f"device: expected cpu, cuda or all, got {device!r}")
    keep = [r for r in rows if device == "all" or r.device == device]
    if only:
        pats = [p.strip() for p in only.split(",") if p.strip()]
        match = lambda i, p: fnmatch.fnmatchcase(i, p) if any(c in p for c in "*?[") else p in i  # noqa: E731
        keep = [r for r in keep if any(match(r.id, p) for p in pats)]
    return keep


def by_id(row_id: str) -> Row:
    """The row with this id (ValueError if there is none)."""
    for r in all_rows():
        if r.id == row_id:
            return r
    raise ValueError(f"no benchmark row {row_id!r}")


@dataclass
class Settings:
    """What one `twinbench bench` run measures.

    quick: conf1 rows, floor and peer included, train on the first `quick_examples` training
    images, one timed round, no accuracy-over-seeds study. Full: book conf1 rows time
    `book_conf1_examples` (partial epochs, scaled to 60,000), every other row whole epochs.
    threads: the intra-op threads of every framework and the JAX peer (the one thread policy of
    the rows compared; PyTorch's fast loop steps on one thread whatever it is).
    """

    quick: bool = True
    rounds: int = 1
    out: str = "twinbench-results"
    resume: bool = False
    device: str = "all"
    only: str | None = None
    quick_examples: int = 6_000
    book_conf1_examples: int = 20_000
    seeds: tuple[int, ...] = (7, 8, 9)
    seed_epochs: int = 5
    gate_steps: int = 3
    threads: int = 1
    startup: bool = True  # also time the first epoch of a fresh process, cold and warm (fast rows, floors, peers)
    row_ids: list[str] = field(default_factory=list)

    def examples(self, row: Row) -> int:
        """How many training examples one timed epoch of `row` visits."""
        if row.preset != "conf1":
            return FULL_EPOCH
        if self.quick:
            return min(self.quick_examples, FULL_EPOCH)
        return min(self.book_conf1_examples, FULL_EPOCH) if row.variant == "book" else FULL_EPOCH

    def key(self, row: Row) -> dict:
        """What a stored row must have been measured with to count for --resume."""
        return {"mode": "quick" if self.quick else "full", "rounds": self.rounds,
                "examples": self.examples(row), "threads": self.threads}

    def rows(self) -> list[Row]:
        if self.row_ids:
            return [by_id(i) for i in self.row_ids]
        return select(all_rows(), self.only, self.device)
