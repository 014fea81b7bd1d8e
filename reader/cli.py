"""`twinbench side-by-side [SECTION] [--html FILE] [--width N]`."""
from __future__ import annotations

import os
import shutil
import sys

from reader.mirror import mirror_problems
from reader.sections import LEFT, RIGHT, ROOT, load_pairs, select
from reader.terminal import render_terminal, write_lines


def main(args) -> None:
    """`twinbench side-by-side [SECTION] [--html FILE] [--width N]`."""
    pairs = load_pairs(ROOT)
    pairs = select(pairs, args.section) if args.section else pairs
    for problem in mirror_problems(ROOT / LEFT, ROOT / RIGHT):
        print(f"twinbench: warning: {LEFT} and {RIGHT} do not mirror: {problem}", file=sys.stderr)
    if args.html:
        from reader.page import write_html
        path = write_html(pairs, args.html, ROOT)
        print(f"side by side of {len(pairs)} sections written to {path}")
        return
    tty = sys.stdout.isatty()
    width = args.width or (shutil.get_terminal_size((160, 24)).columns if tty else 160)
    write_lines(render_terminal(pairs, max(width, 40), colour=tty and not os.environ.get("NO_COLOR")))
