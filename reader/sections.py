"""The two implementations cut into sections and paired.

Each file of tf_impl/ and torch_impl/ (the packages of the framework registry) is
cut at its `# --- section: <name> ---` markers (the code before the first marker is
the file's "header"). Sections are paired by (file, name); reader.align lines up
the lines of a pair.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import frameworks
from reader.align import Row, align

ROOT = Path(__file__).resolve().parents[1]
LEFT, RIGHT = (fw.package for fw in frameworks.all())  # TensorFlow on the left, PyTorch on the right
SIDES = (LEFT, RIGHT)
TITLES = {fw.package: f"{fw.title} ({fw.package})" for fw in frameworks.all()}
FILE_ORDER = ("__init__.py", "model.py", "losses.py", "optimizers.py", "training.py", "fast.py", "compiled.py")
MARKER = re.compile(r"^# --- section: (?P<name>[\w.-]+) ---\s*$")


@dataclass(frozen=True)
class Section:
    """One section of one file: (1-based line number, text) pairs, blank ends trimmed."""
    file: str
    name: str
    lines: tuple[tuple[int, str], ...]


def split_sections(path: Path) -> list[Section]:
    """The file's sections in order; the code before the first marker is 'header'."""
    chunks: list[tuple[str, list[tuple[int, str]]]] = [("header", [])]
    for number, text in enumerate(path.read_text().expandtabs(4).splitlines(), 1):
        match = MARKER.match(text)
        if match:
            chunks.append((match["name"], []))
        else:
            chunks[-1][1].append((number, text.rstrip()))
    sections = []
    for name, lines in chunks:
        while lines and not lines[-1][1]:
            lines.pop()
        start = next((i for i, (_, t) in enumerate(lines) if t), len(lines))
        if lines[start:] or name != "header":
            sections.append(Section(path.name, name, tuple(lines[start:])))
    return sections


@dataclass
class SectionPair:
    """The TF and PyTorch versions of one section (either may be missing)."""
    file: str
    name: str
    tf: Section | None = None
    pt: Section | None = None

    @property
    def id(self) -> str:
        return f"{Path(self.file).stem.strip('_') or 'init'}-{self.name}"

    @property
    def title(self) -> str:
        only = "" if self.tf and self.pt else f"  (only in {LEFT if self.tf else RIGHT})"
        return f"{self.file} :: {self.name}{only}"

    @cached_property
    def rows(self) -> list[Row]:
        return align(list(self.tf.lines if self.tf else ()), list(self.pt.lines if self.pt else ()))


def file_key(name: str) -> tuple[int, str]:
    return (FILE_ORDER.index(name) if name in FILE_ORDER else len(FILE_ORDER), name)


def load_pairs(root: Path = ROOT) -> list[SectionPair]:
    """Every section of both packages, paired by (file, name), in file then TF order."""
    files = {p.name for side in SIDES for p in (root / side).glob("*.py")}
    pairs: list[SectionPair] = []
    for name in sorted(files, key=file_key):
        by_key: dict[str, SectionPair] = {}
        for side in SIDES:
            path = root / side / name
            for section in split_sections(path) if path.exists() else []:
                pair = by_key.setdefault(section.name, SectionPair(name, section.name))
                setattr(pair, "tf" if side == LEFT else "pt", section)
        pairs += by_key.values()
    return pairs


def select(pairs: list[SectionPair], query: str) -> list[SectionPair]:
    """Sections named `query` ('train_step', or 'training.py::train_step' / 'model:header')."""
    file, _, name = query.replace("::", ":").rpartition(":")
    file = file if not file or file.endswith(".py") else f"{file}.py"
    found = [p for p in pairs if p.name == name and file in ("", p.file)]
    if not found:
        counts: dict[str, int] = {}
        for p in pairs:
            counts[p.name] = counts.get(p.name, 0) + 1
        names = [p.name if counts[p.name] == 1 else f"{p.file}::{p.name}" for p in pairs]
        raise ValueError(f"unknown section {query!r}; available sections: {', '.join(names)}")
    return found
