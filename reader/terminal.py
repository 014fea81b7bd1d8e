"""The side-by-side view in a terminal: two columns, pygments colours, wrapped lines."""
from __future__ import annotations

import os
import sys
from itertools import zip_longest

from reader.align import DIFF, LEGEND, MARKS, SPELLING
from reader.sections import LEFT, RIGHT, TITLES, SectionPair

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
    out = [f"     {TITLES[LEFT]:<{col}}       {TITLES[RIGHT]}"[:width], LEGEND[:width]]
    for pair in pairs:
        out += [""] + render_pair(pair, width, colour)
    return out


def write_lines(lines: list[str]) -> None:
    """Print, quietly stopping when the reader (`| head`) goes away."""
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
