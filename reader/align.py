"""Line alignment of a section pair: framework spellings normalized, then difflib.

A row is "same" (verbatim), "spelling" (same except framework spelling
(`FRAMEWORK_SPELLINGS`): dimmed) or "diff" (highlighted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import zip_longest

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


@dataclass
class Row:
    """One aligned row; a side is None where that side has no line."""
    tf: tuple[int, str] | None
    pt: tuple[int, str] | None
    kind: str


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
