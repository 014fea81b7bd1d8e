"""The `twinbench` command line (also `python -m twinbench`)."""
from __future__ import annotations

import argparse
import sys

import frameworks
from common.config import SpecError
from twinbench import commands
from twinbench.options import add_variant

DESCRIPTION = """One spec of the chapter-5 digit network (Ekman, Learning Deep Learning) drives matching
TensorFlow/Keras 3 and PyTorch implementations. Parity tests check that they compute the same
loss and gradients; benchmarks measure how fast and how accurate they are."""

EXAMPLES = {
    "data": ["twinbench data", "twinbench data --path ~/Downloads/mnist.npz"],
    "config": ["twinbench config list", "twinbench config show conf5 > my.toml"],
    "train": ["twinbench train --framework tf                     # conf5, fast, 20 epochs: about 10 s",
              "twinbench train --framework tf --config conf1 --epochs 6 --variant book   # the chapter's code",
              "twinbench train --framework torch --canonical-start",
              "twinbench train --framework tf --epochs 6 --json h.json --save w.npz",
              "twinbench train --framework tf --epochs 6 --json h.json --save w.npz --resume   # after Ctrl-C"],
    "compare": ["twinbench compare --epochs 3",
                "twinbench compare --config my.toml --variant book --plot both.png --json both.json"],
    "evaluate": ["twinbench evaluate --framework torch --weights w.npz   # weights trained by either framework"],
    "side-by-side": ["twinbench side-by-side train_step", "twinbench side-by-side --html twinbench.html"],
}


def examples(name: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])


def version() -> str:
    """twinbench's version and the installed frameworks' (read from their metadata: nothing is imported)."""
    found = {package: _installed_version(package) for package in ("twinbench", "tensorflow", "keras", "torch")}
    return ", ".join([f"twinbench {found.pop('twinbench') or 'unknown'}"] +
                     [f"{package} {v}" if v else f"{package}: not installed" for package, v in found.items()])


def _installed_version(package: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _sub(sub, name: str, helptext: str, description: str = ""):
    import textwrap
    return sub.add_parser(name, help=helptext, description=textwrap.fill(description or helptext, 88),
                          epilog=examples(name), formatter_class=argparse.RawDescriptionHelpFormatter)


def _run_options(t, outputs: str) -> None:
    """The options train and compare share; `outputs`: the files --overwrite may replace."""
    t.add_argument("--config", default="conf5", help="preset name (conf1..conf5) or a TOML file (default conf5: "
                                                     "seconds an epoch; conf1 trains one example per step)")
    add_variant(t)
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="cuda: the GPU, an error if the framework sees none (default cpu)")
    t.add_argument("--epochs", type=int, help="override the spec's training.epochs")
    t.add_argument("--seed", type=int, help="override the spec's training.seed (initial weights and shuffle order)")
    t.add_argument("--json", metavar="FILE", help="the history (spec, environment, status, every epoch) as JSON, "
                                                  "rewritten after every epoch")
    t.add_argument("--plot", metavar="FILE.png", help="write the learning curves as PNG")
    t.add_argument("--quiet", action="store_true",
                   help="no per-epoch lines or progress bars (the final result is still printed)")
    t.add_argument("--overwrite", action="store_true", help=f"replace existing output files ({outputs})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinbench", description=DESCRIPTION,
                                epilog="`twinbench COMMAND --help` shows each command's options and examples.")
    p.add_argument("--version", action="version", version=version(), help="twinbench's and the frameworks' versions")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = _sub(sub, "data", "fetch, verify and cache the real MNIST; report its source")
    d.add_argument("--path", help="a Keras-style mnist.npz or a directory of the four IDX .gz files")
    d.set_defaults(func=commands.cmd_data)
    c = _sub(sub, "config", "list the presets or show a resolved spec, every value explicit (TOML)")
    c.add_argument("action", choices=["show", "list"], help="list the presets, or show one spec")
    c.add_argument("name", nargs="?", default="conf1", help="preset name or TOML path (default conf1)")
    c.set_defaults(func=commands.cmd_config)
    t = _sub(sub, "train", "train one framework", "Train one framework on the real MNIST. The weights start from "
             "that framework's own initializers, seeded by training.seed, as the book's code does: TF and PyTorch "
             "then start from different weights. --canonical-start starts from the canonical weights instead "
             "(the same in both frameworks, as compare, experiment and bench do). The evaluation after each "
             "epoch is on the test set (training.evaluation).")
    t.add_argument("--framework", required=True, choices=list(frameworks.NAMES), help="tf (Keras 3) or torch")
    _run_options(t, "--json, --save, --plot")
    t.add_argument("--canonical-start", action="store_true",
                   help="start from the canonical initial weights of training.seed (the same in both frameworks)")
    t.add_argument("--save", metavar="FILE.npz", help="the checkpoint (weights, optimizer state, history), "
                                                      "rewritten after every epoch")
    t.add_argument("--resume", action="store_true",
                   help="continue the interrupted run whose checkpoint is --save (and history --json)")
    t.set_defaults(func=commands.cmd_train)
    t = _sub(sub, "compare", "train both frameworks from the same canonical weights, side by side")
    _run_options(t, "--json, --plot")
    t.set_defaults(func=commands.cmd_compare)
    e = _sub(sub, "evaluate", "evaluate a checkpoint saved by either framework on the test set")
    e.add_argument("--framework", required=True, choices=list(frameworks.NAMES), help="the framework to evaluate in")
    e.add_argument("--weights", required=True, metavar="FILE.npz", help="a checkpoint written by `train --save`")
    e.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default cpu")
    e.add_argument("--json", metavar="FILE", help="write the result as JSON")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    e.set_defaults(func=commands.cmd_evaluate)
    s = _sub(sub, "side-by-side", "the two implementations in aligned columns (terminal or HTML)")
    s.add_argument("section", nargs="?", help="one section (e.g. train_step or training.py::train_step); default all")
    s.add_argument("--html", metavar="FILE", help="write one self-contained HTML page instead")
    s.add_argument("--width", type=int, help="terminal width (default: detected)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --html file")
    s.set_defaults(func=commands.cmd_side_by_side)
    from twinbench.diff import add_parser as add_diff
    from twinbench.experiment import add_parser as add_experiment
    add_diff(sub)
    add_experiment(sub)
    sub.add_parser("bench", help="benchmarks: epoch time and accuracy, TF vs PyTorch, book vs fast "
                                 "(`twinbench bench --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for message in frameworks.configure():  # before any framework's runtime starts (environment only)
        print(f"twinbench: {message}", file=sys.stderr)
    if argv[:1] == ["bench"]:  # the benchmark harness has its own options (argparse.REMAINDER drops leading --flags)
        from bench.cli import main as bench_main
        from common import interrupts
        with interrupts.deferred():
            return bench_main(argv[1:])
    args = parser().parse_args(argv)
    from common import interrupts
    from common.checkpoint import CheckpointError
    from common.data import DataError
    from twinbench.run import RunStopped
    try:
        with interrupts.deferred():  # a Ctrl-C stops where it is safe to (common.interrupts)
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
