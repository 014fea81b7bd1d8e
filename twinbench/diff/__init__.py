"""`twinbench diff A [B]`: where and why two runs part, per step, per tensor, per layer,
in bits of agreement.

    sides     FRAMEWORK[:SPEC][@DTYPE] parsed; a runner per side (tf, torch or the reference)
    trace     both runs step by step from the same weights on the same batches, compared
    localise  layer by layer on the same inputs: the first layer that computes differently
    report    the table, the catalogue's explanation, the plot, the HTML page
"""
from __future__ import annotations

import sys

from common.config import SpecError
from common.files import write_json


def main(args) -> int:
    """The command: parse the sides, trace, localise, report (terminal, --json, --png, --html).
    Exit status, as diff(1)'s: 0 when the runs agree within tolerance, 1 when they part."""
    from twinbench.diff import report, trace
    from common.config import replace
    from twinbench.diff.sides import REFERENCE, Side, check_pair, parse_side
    a = parse_side(args.a)
    b = parse_side(args.b) if args.b else Side(REFERENCE, replace(a.spec, **{"training.dtype": "float64"}),
                                               f"{REFERENCE}:{a.spec.name}")
    check_pair(a, b)
    if args.steps is not None and args.steps < 1:
        raise SpecError(f"--steps: expected a positive number of steps, got {args.steps}")
    if args.epochs is not None and args.epochs < 1:
        raise SpecError(f"--epochs: expected a positive number of epochs, got {args.epochs}")
    if args.accuracy and REFERENCE in (a.framework, b.framework):
        raise SpecError("--accuracy trains both sides to the end with the fast variants: the reference has none")
    from twinbench.commands import refuse_overwrite
    refuse_overwrite(args, ("json", "png", "html"))
    steps = trace.default_steps(a.spec, args.epochs, args.steps)
    print(f"twinbench diff: {a.text} vs {b.text}, {steps} steps from the same weights on the same batches",
          file=sys.stderr, flush=True)
    result = trace.run(a, b, steps, progress=progress_bar(steps))
    accuracy = final_accuracy(a, b) if args.accuracy else None
    print(report.terminal(result, accuracy))
    if args.json:
        write_json(args.json, {**trace.to_json(result), "accuracy": accuracy})
        print(f"every step written to {args.json}")
    png = report.plot_bits(result, args.png)
    print(f"bits of agreement plotted in {args.png}") if args.png else None
    if args.html:
        print(f"page written to {report.write_page(result, args.html, png, accuracy)}")
    return 1 if result.first else 0


def progress_bar(total: int):
    """A tqdm bar on a terminal (stderr), else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    bar = tqdm(total=total, unit="step", desc="diff", leave=False, mininterval=0.5)
    return lambda k: (bar.update(1), bar.close() if k == total else None)


def final_accuracy(a, b) -> dict:
    """Both sides trained to the end of their spec's epochs (fast variants) from the same
    canonical weights: the final test accuracy of each."""
    from common import reference as ref
    from twinbench import run
    out = {"epochs": a.spec.training.epochs}
    for side in (a, b):
        print(f"--accuracy: training {side.text} for {side.spec.training.epochs} epochs (fast)...",
              file=sys.stderr, flush=True)
        _, history = run.train(side.framework, side.spec, "fast", weights=ref.start_weights(side.spec,
                               side.spec.training.seed), quiet=True)
        out[side.text] = history[-1]["val_accuracy"]
    return out


def add_parser(sub) -> None:
    """The `diff` subcommand's arguments."""
    import argparse
    import textwrap
    about = ("Run two sides from the same canonical weights on the same batches and compare every tensor after "
             "every step; name the first step, tensor and layer beyond tolerance and the catalogue entries that "
             "explain it. Exit status, as diff's: 0 when the two runs agree within tolerance at every step, 1 when "
             "they part, 2 on a usage error.")
    d = sub.add_parser("diff", help="where and why two runs part: per step, per tensor, per layer, in bits",
                       description=textwrap.fill(about, 88), formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  twinbench diff tf:conf5 torch:conf5 --epochs 1 --html conf5.html   # the page to attach to a bug report
  twinbench diff tf:conf5@float64 torch:conf5@float64
  twinbench diff tf:conf1@float32 reference:conf1
  twinbench diff tf:conf5 torch:torch-adam.toml --accuracy           # does the difference matter?""")
    d.add_argument("a", help="FRAMEWORK[:SPEC][@DTYPE], e.g. tf:conf5 or torch:my.toml@float64")
    d.add_argument("b", nargs="?", help="the other side (default: the float64 reference of A's spec)")
    how_long = d.add_mutually_exclusive_group()
    how_long.add_argument("--steps", type=int, help="steps to compare (default: one epoch, at most 1,000)")
    how_long.add_argument("--epochs", type=int, help="whole epochs to compare instead")
    d.add_argument("--json", help="write every step's comparisons as JSON")
    d.add_argument("--png", help="write the bits-of-agreement plot as PNG")
    d.add_argument("--html", help="write one self-contained HTML page (table, plot, specs, catalogue entries)")
    d.add_argument("--accuracy", action="store_true",
                   help="also train both sides to the end (fast variants) and report the final test accuracy")
    d.add_argument("--overwrite", action="store_true", help="replace existing output files (--json, --png, --html)")
    d.set_defaults(func=main)
