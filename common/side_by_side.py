"""The two implementations side by side: sections paired, lines aligned.

Each file of tf_impl/ and torch_impl/ is cut at its `# --- section: <name> ---`
markers (the code before the first marker is the file's "header"). Sections
are paired by (file, name) and their lines aligned with difflib after the
framework spellings are normalized (`FRAMEWORK_SPELLINGS`): a row is "same" (verbatim),
"spelling" (same except framework spelling: dimmed) or "diff" (highlighted).
`mirror_problems` checks that the two packages keep the same shape.
The HTML page lives in `common.side_by_side_html`.
"""
from __future__ import annotations

import ast
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


# --- mirror check ---


def _public_functions(tree: ast.Module) -> list[tuple[str, int]]:
    return [(n.name, n.lineno) for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")]


def _dunder_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:
                return [f"<not a literal: {ast.unparse(node.value)}>"]
    return None


def _section_at(sections: list[Section], lineno: int) -> str:
    return next((s.name for s in reversed(sections) if s.lines and s.lines[0][0] <= lineno), "header")


def _order_problem(what: str, a: list[str], b: list[str]) -> str | None:
    """A message naming the first place where the common items of a and b differ in order."""
    common = set(a) & set(b)
    a, b = [x for x in a if x in common], [x for x in b if x in common]
    for x, y in zip(a, b):
        if x != y:
            return f"{what} in a different order: tf_impl has {x!r} where torch_impl has {y!r} " \
                   f"(tf_impl: {', '.join(a)}; torch_impl: {', '.join(b)})"
    return None


def _only(what: str, a: list[str], b: list[str]) -> list[str]:
    return [f"{what} {x!r} only in {side}" for side, xs, ys in (("tf_impl", a, b), ("torch_impl", b, a))
            for x in xs if x not in ys]


def _file_problems(name: str, tf_path: Path, pt_path: Path) -> list[str]:
    trees, sections = [], []
    for path in (tf_path, pt_path):
        try:
            trees.append(ast.parse(path.read_text(), str(path)))
        except SyntaxError as exc:
            return [f"{name}: cannot parse {path.parent.name}/{name}: {exc}"]
        sections.append([s for s in split_sections(path) if s.name != "header"])
    out = []
    funcs = [_public_functions(t) for t in trees]
    names = [[f for f, _ in fs] for fs in funcs]
    out += _only("public function", *names)
    out.append(_order_problem("public functions", *names))
    snames = [[s.name for s in ss] for ss in sections]
    out += _only("section", *snames)
    out.append(_order_problem("sections", *snames))
    where = [{f: _section_at(ss, line) for f, line in fs} for fs, ss in zip(funcs, sections)]
    out += [f"public function {f!r} is in section {where[0][f]!r} in tf_impl but {where[1][f]!r} in torch_impl"
            for f in names[0] if f in where[1] and where[0][f] != where[1][f]]
    alls = [_dunder_all(t) for t in trees]
    if alls[0] != alls[1]:
        out.append(f"__all__ differs: tf_impl {alls[0]} vs torch_impl {alls[1]}")
    return [f"{name}: {p}" for p in out if p]


def mirror_problems(tf_dir: Path | str, torch_dir: Path | str) -> list[str]:
    """Where the two packages stop mirroring each other (empty when they mirror)."""
    tf_dir, torch_dir = Path(tf_dir), Path(torch_dir)
    tf_files, pt_files = ({p.name for p in d.glob("*.py")} for d in (tf_dir, torch_dir))
    problems = [f"{n}: file only in {side}" for side, xs, ys in
                (("tf_impl", tf_files, pt_files), ("torch_impl", pt_files, tf_files)) for n in sorted(xs - ys)]
    for name in sorted(tf_files & pt_files, key=_file_key):
        problems += _file_problems(name, tf_dir / name, torch_dir / name)
    return problems


# --- terminal ---

# 256-colour SGR codes for pygments token types (the nearest listed parent applies).
COLOURS = {"Keyword": "38;5;170", "Operator.Word": "38;5;170", "Name.Function": "38;5;75",
           "Name.Class": "38;5;75", "Name.Builtin": "38;5;80", "Name.Decorator": "38;5;179",
           "Literal.String": "38;5;114", "Literal.Number": "38;5;180", "Comment": "38;5;245;3"}
DIM, HIGHLIGHT, RESET = "38;5;244", "48;5;58", "\x1b[0m"
Tokens = list[tuple[object, str]]


def lex_lines(lines: list[str]) -> list[Tokens]:
    """Pygments tokens of a block of Python, split per line (keeps docstring context)."""
    from pygments.lexers import PythonLexer

    out: list[Tokens] = [[]]
    for ttype, value in PythonLexer(stripnl=False, ensurenl=True).get_tokens("\n".join(lines)):
        for k, piece in enumerate(value.split("\n")):
            if k:
                out.append([])
            if piece:
                out[-1].append((ttype, piece))
    return out[:len(lines)] + [[] for _ in range(len(lines) - len(out))]


def _sgr(ttype) -> str:
    while ttype is not None and str(ttype)[6:] not in COLOURS:
        ttype = ttype.parent
    return COLOURS[str(ttype)[6:]] if ttype is not None else ""


def _cut_points(text: str, width: int) -> list[int]:
    """Where to wrap `text` into pieces of at most `width`: after a space or comma if one
    falls in the piece's second half, else hard at `width`."""
    cuts, start = [], 0
    while len(text) - start > width:
        piece = text[start:start + width]
        soft = max(piece.rfind(" "), piece.rfind(",")) + 1
        start += soft if soft > width // 2 else width
        cuts.append(start)
    return cuts


def _wrap(tokens: Tokens, width: int) -> list[Tokens]:
    """Cut a token line into chunks of at most `width` characters."""
    cuts = _cut_points("".join(t for _, t in tokens), width)
    chunks: list[Tokens] = [[]]
    position = 0
    for ttype, text in tokens:
        while text:
            if cuts and position == cuts[0]:
                cuts.pop(0)
                chunks.append([])
            take = len(text) if not cuts else min(len(text), cuts[0] - position)
            chunks[-1].append((ttype, text[:take]))
            text, position = text[take:], position + take
    return chunks


def _cells(line: tuple[int, str] | None, tokens: Tokens, col: int, kind: str, colour: bool) -> list[str]:
    """The column's text for one row: number + code, wrapped, each piece `col + 5` wide."""
    if line is None:
        return [" " * (col + 5)]
    cells = []
    for k, chunk in enumerate(_wrap(tokens, col)):
        number = f"{line[0]:>4} " if k == 0 else "   + "
        pad = " " * (col - sum(len(t) for _, t in chunk))
        if not colour:
            cells.append(number + "".join(t for _, t in chunk) + pad)
            continue
        if kind == SPELLING:
            code = f"\x1b[{DIM}m" + "".join(t for _, t in chunk) + pad + RESET
        else:
            code = "".join(f"\x1b[{_sgr(tt)}m{t}\x1b[39;22;23m" if _sgr(tt) else t for tt, t in chunk) + pad
            code = f"\x1b[{HIGHLIGHT}m{code}{RESET}" if kind == DIFF else code
        cells.append(f"\x1b[{DIM}m{number}{RESET}{code}")
    return cells or [f"{line[0]:>4} " + " " * col]


def render_pair(pair: SectionPair, width: int, colour: bool = False) -> list[str]:
    """The section as terminal lines, each at most `width` visible characters."""
    col = max(10, (width - 13) // 2)
    tokens = {side: iter(lex_lines([t for _, t in s.lines])) if s else iter(())
              for side, s in (("tf", pair.tf), ("pt", pair.pt))}
    title = f"== {pair.title} =="[:width]
    out = [f"\x1b[1m{title}{RESET}" if colour else title]
    for row in pair.rows:
        left = _cells(row.tf, next(tokens["tf"]) if row.tf else [], col, row.kind, colour)
        right = _cells(row.pt, next(tokens["pt"]) if row.pt else [], col, row.kind, colour)
        mark = MARKS[row.kind]
        mark = f"\x1b[1;33m{mark}{RESET}" if colour and row.kind == DIFF else mark
        for k, (a, b) in enumerate(zip_longest(left, right, fillvalue=" " * (col + 5))):
            out.append(f"{a} {mark if k == 0 else ' '} {b}".rstrip())
    return out


def render_terminal(pairs: list[SectionPair], width: int, colour: bool = False) -> list[str]:
    """Column titles, the legend, then every section."""
    col = max(10, (width - 13) // 2)
    out = [f"     {TITLES['tf_impl']:<{col}}       {TITLES['torch_impl']}"[:width], LEGEND[:width]]
    for pair in pairs:
        out += [""] + render_pair(pair, width, colour)
    return out


def _write_lines(lines: list[str]) -> None:
    """Print, quietly stopping when the reader (`| head`) goes away."""
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(args) -> None:
    """`twinbench side-by-side [SECTION] [--html FILE] [--width N]`."""
    pairs = load_pairs(ROOT)
    pairs = select(pairs, args.section) if args.section else pairs
    for problem in mirror_problems(ROOT / "tf_impl", ROOT / "torch_impl"):
        print(f"twinbench: warning: tf_impl and torch_impl do not mirror: {problem}", file=sys.stderr)
    if args.html:
        from common.side_by_side_html import write_html
        path = write_html(pairs, args.html, ROOT)
        print(f"side by side of {len(pairs)} sections written to {path}")
        return
    tty = sys.stdout.isatty()
    width = args.width or (shutil.get_terminal_size((160, 24)).columns if tty else 160)
    _write_lines(render_terminal(pairs, max(width, 40), colour=tty and not os.environ.get("NO_COLOR")))
