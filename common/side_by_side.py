"""The two implementations side by side: sections paired, lines aligned.

Each file of tf_impl/ and torch_impl/ is cut at its `# --- section: <name> ---`
markers (the code before the first marker is the file's "header"). Sections
are paired by (file, name) and their lines aligned with difflib after the
framework spellings are normalized (`FRAMEWORK_SPELLINGS`): a row is "same" (verbatim),
"spelling" (same except framework spelling: dimmed) or "diff" (highlighted).
The mirror check lives in `common.mirror`, the terminal view in
`common.side_by_side_term`, the HTML page in `common.side_by_side_html`.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cached_property
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("tf_impl", "torch_impl")
TITLES = {"tf_impl": "TensorFlow / Keras 3 (tf_impl)", "torch_impl": "PyTorch (torch_impl)"}
FILE_ORDER = ("__init__.py", "model.py", "losses.py", "optimizers.py", "training.py", "fast.py")
MARKER = re.compile(r"^# --- section: (?P<name>[\w.-]+) ---\s*$")
SAME, SPELLING, DIFF = "same", "spelling", "diff"
MARKS = {SAME: " ", SPELLING: "~", DIFF: "!"}
LEGEND = "' ' same   '~' same except framework spelling (dimmed)   '!' differs (highlighted)"

# Framework spellings mapped to one neutral word, in order (the specific before the generic).
FRAMEWORK_SPELLINGS: list[tuple[str, str]] = [
    (r"\b(TF|PT):", "FW:"),
    (r"\b(tf|torch)_impl\b", "IMPL"),
    (r"\bTensorFlow( 2)?( / Keras 3)?|\bKeras 3|\bKeras\b|\bPyTorch\b", "FRAMEWORK"),
    (r"\btf\.reduce_mean\b|\btorch\.mean\b", "MEAN"),
    (r"\btf\.reduce_sum\b|\btorch\.sum\b", "SUM"),
    (r"\btf\.reduce_max\b|\btorch\.amax\b", "MAX"),
    (r"\btf\.math\.log\b|\btorch\.log\b", "LOG"),
    (r"\btf\.math\.exp\b|\btf\.exp\b|\btorch\.exp\b", "EXP"),
    (r"\btf\.clip_by_value\b|\btorch\.clamp\b", "CLIP"),
    (r"\btf\.nn\.softmax\b|\btorch\.softmax\b", "SOFTMAX"),
    (r"\btf\.concat\b|\btorch\.cat\b", "CONCAT"),
    (r"\btf\.convert_to_tensor\b|\btorch\.as_tensor\b", "AS_TENSOR"),
    (r"\btf\.(Tensor|Variable)\b|\btorch\.Tensor\b", "TENSOR"),
    (r"\bkeras\.(Model|Sequential|layers\.Layer|losses\.Loss)\b|\b(torch\.)?nn\.(Module|Sequential)\b", "MODULE"),
    (r"\bkeras\.optimizers\.Optimizer\b|\btorch\.optim\.Optimizer\b", "OPTIMIZER"),
    (r"\bkeras\.optimizers\b|\btorch\.optim\b", "OPTIMIZERS"),
    (r"\bkeras\.initializers\b|\bnn\.init\b", "INIT"),
    (r"\baxis=|\bdim=", "AXIS="),
    (r"\bkeepdims=|\bkeepdim=", "KEEPDIM="),
    (r"\bimport tensorflow as tf\b|\bimport torch\b", "import FW"),
    (r"\btensorflow\b|\btorch\b|\btf\b", "FW"),
    (r"\bkeras\b|\bnn\b", "NN"),
]
_SPELLING = [(re.compile(p), r) for p, r in FRAMEWORK_SPELLINGS]
_PRAGMA = re.compile(r"#\s*(noqa|type: ignore(\[[\w, -]*\])?)(:\s*[A-Z]+\d+(,\s*[A-Z]+\d+)*)?\s*")  # lint, not code


def normalize(line: str) -> str:
    """The line with framework spellings replaced by neutral words."""
    line = re.sub(r"\s*#\s*$", "", _PRAGMA.sub("# ", line))
    for pattern, neutral in _SPELLING:
        line = pattern.sub(neutral, line)
    return line.strip()


# --- sections ---


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
class Row:
    """One aligned row; a side is None where that side has no line."""
    tf: tuple[int, str] | None
    pt: tuple[int, str] | None
    kind: str


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
        only = "" if self.tf and self.pt else f"  (only in {'tf_impl' if self.tf else 'torch_impl'})"
        return f"{self.file} :: {self.name}{only}"

    @cached_property
    def rows(self) -> list[Row]:
        return align(list(self.tf.lines if self.tf else ()), list(self.pt.lines if self.pt else ()))


def _file_key(name: str) -> tuple[int, str]:
    return (FILE_ORDER.index(name) if name in FILE_ORDER else len(FILE_ORDER), name)


def load_pairs(root: Path = ROOT) -> list[SectionPair]:
    """Every section of both packages, paired by (file, name), in file then TF order."""
    files = {p.name for side in SIDES for p in (root / side).glob("*.py")}
    pairs: list[SectionPair] = []
    for name in sorted(files, key=_file_key):
        by_key: dict[str, SectionPair] = {}
        for side in SIDES:
            path = root / side / name
            for section in split_sections(path) if path.exists() else []:
                pair = by_key.setdefault(section.name, SectionPair(name, section.name))
                setattr(pair, "tf" if side == "tf_impl" else "pt", section)
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


# --- alignment ---


def align(tf: list[tuple[int, str]], pt: list[tuple[int, str]]) -> list[Row]:
    """Rows pairing the lines of the two sides, matched on their normalized text."""
    a, b = [normalize(t) for _, t in tf], [normalize(t) for _, t in pt]
    rows = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [Row(tf[i], pt[j], SAME if tf[i][1] == pt[j][1] else SPELLING)
                     for i, j in zip(range(i1, i2), range(j1, j2))]
            continue
        for i, j in _pair_similar(a[i1:i2], b[j1:j2]):
            left, right = None if i is None else tf[i1 + i], None if j is None else pt[j1 + j]
            blank = not (left and left[1]) and not (right and right[1])  # a blank line on one side
            rows.append(Row(left, right, SAME if blank else DIFF))
    return rows


def _pair_similar(a: list[str], b: list[str], cutoff: float = 0.45) -> list[tuple[int | None, int | None]]:
    """Pair differing lines: the most similar pair first, then the parts either side of it."""
    if len(a) * len(b) > 4000:
        return list(zip_longest(range(len(a)), range(len(b))))
    ratio = [[SequenceMatcher(None, x, y).ratio() for y in b] for x in a]

    def pair(i1: int, i2: int, j1: int, j2: int) -> list[tuple[int | None, int | None]]:
        cells = [(ratio[i][j], -abs((i - i1) - (j - j1)), i, j) for i in range(i1, i2) for j in range(j1, j2)]
        best = max(cells, default=None)
        if best is None or best[0] < cutoff:
            return [(i if i < i2 else None, j if j < j2 else None)
                    for i, j in zip_longest(range(i1, i2), range(j1, j2), fillvalue=max(i2, j2))]
        _, _, i, j = best
        return pair(i1, i, j1, j) + [(i, j)] + pair(i + 1, i2, j + 1, j2)

    return pair(0, len(a), 0, len(b))


def main(args) -> None:
    """`twinbench side-by-side [SECTION] [--html FILE] [--width N]`."""
    pairs = load_pairs(ROOT)
    pairs = select(pairs, args.section) if args.section else pairs
    from common.mirror import mirror_problems
    from common.side_by_side_term import render_terminal, write_lines
    for problem in mirror_problems(ROOT / "tf_impl", ROOT / "torch_impl"):
        print(f"twinbench: warning: tf_impl and torch_impl do not mirror: {problem}", file=sys.stderr)
    if args.html:
        from common.side_by_side_html import write_html
        path = write_html(pairs, args.html, ROOT)
        print(f"side by side of {len(pairs)} sections written to {path}")
        return
    tty = sys.stdout.isatty()
    width = args.width or (shutil.get_terminal_size((160, 24)).columns if tty else 160)
    write_lines(render_terminal(pairs, max(width, 40), colour=tty and not os.environ.get("NO_COLOR")))
