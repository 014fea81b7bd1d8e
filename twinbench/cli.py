"""The `twinbench` command line (also `python -m twinbench`)."""
from __future__ import annotations

import argparse
import sys

import frameworks
from common.config import SpecError
from twinbench import commands


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="fetch, verify and cache the real MNIST; report its source")
    d.add_argument("--path", help="a Keras-style mnist.npz or a directory of the four IDX .gz files")
    d.set_defaults(func=commands.cmd_data)
    c = sub.add_parser("config", help="list presets or show a resolved spec")
    c.add_argument("action", choices=["show", "list"])
    c.add_argument("name", nargs="?", default="conf1", help="preset name or TOML path")
    c.set_defaults(func=commands.cmd_config)
    for name, func, helptext in (("train", commands.cmd_train, "train one framework"),
                                 ("compare", commands.cmd_compare, "train both from the same weights, side by side")):
        t = sub.add_parser(name, help=helptext)
        if name == "train":
            t.add_argument("--framework", required=True, choices=list(frameworks.NAMES))
            t.add_argument("--save", help="the checkpoint (weights, optimizer state, history), rewritten every epoch")
            t.add_argument("--resume", action="store_true",
                           help="continue the interrupted run whose checkpoint is --save (and history --json)")
        t.add_argument("--json", help="the history (with spec, environment and status) as JSON, rewritten every epoch")
        t.add_argument("--config", default="conf1", help="preset name or TOML path (default conf1)")
        t.add_argument("--variant", default="book", choices=list(frameworks.VARIANTS))
        t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        t.add_argument("--epochs", type=int, help="override training.epochs")
        t.add_argument("--seed", type=int, help="override training.seed")
        t.add_argument("--plot", help="write the learning curves as PNG")
        t.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bars")
        t.set_defaults(func=func)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint saved by either framework")
    e.add_argument("--framework", required=True, choices=list(frameworks.NAMES))
    e.add_argument("--weights", required=True, help="a .npz written by `train --save`")
    e.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    e.add_argument("--json", help="write the result as JSON")
    e.set_defaults(func=commands.cmd_evaluate)
    s = sub.add_parser("side-by-side", help="the two implementations in aligned columns")
    s.add_argument("section", nargs="?", help="one section (for example train_step)")
    s.add_argument("--html", help="write a self-contained HTML page instead")
    s.add_argument("--width", type=int, help="terminal width (default: detected)")
    s.set_defaults(func=commands.cmd_side_by_side)
    from twinbench.diff import add_parser as add_diff
    from twinbench.experiment import add_parser as add_experiment
    add_diff(sub)
    add_experiment(sub)
    sub.add_parser("bench", help="benchmarks: twinbench bench --help (see bench/README.md)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for message in frameworks.configure():  # before any framework's runtime starts (environment only)
        print(f"twinbench: {message}", file=sys.stderr)
    if argv[:1] == ["bench"]:  # the benchmark harness has its own options (argparse.REMAINDER drops leading --flags)
        from bench.cli import main as bench_main
        return bench_main(argv[1:])
    args = parser().parse_args(argv)
    from common.checkpoint import CheckpointError
    from common.data import DataError
    from twinbench.run import RunStopped
    try:
        code = args.func(args)
    except RunStopped as exc:
        print(f"twinbench: {exc}", file=sys.stderr)
        return exc.exit_code
    except (SpecError, DataError, CheckpointError, ValueError, RuntimeError) as exc:
        print(f"twinbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twinbench: interrupted", file=sys.stderr)
        return 130
    return code or 0
