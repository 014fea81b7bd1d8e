"""The `twinbench` command line (also `python -m common`)."""
from __future__ import annotations

import argparse
import sys

from common.config import SpecError, load_spec, preset_names, to_toml


def cmd_data(args) -> None:
    from common.data import fetch_mnist
    arrays, info = fetch_mnist(args.path, verbose=True)
    print(f"MNIST from {info.source}: {info.location}")
    print(f"cache: {info.cache}")
    for name, digest in info.sha256.items():
        print(f"  {name:8s} {str(arrays[name].shape):16s} sha256 {digest}  verified")


def cmd_config(args) -> None:
    if args.action == "list":
        for name in preset_names():
            print(f"{name}: {load_spec(name).description}")
    else:
        print(to_toml(load_spec(args.name)), end="")


def _spec(args):
    import dataclasses
    spec = load_spec(args.config)
    changes = {k: v for k, v in (("epochs", args.epochs), ("seed", getattr(args, "seed", None))) if v is not None}
    return dataclasses.replace(spec, training=dataclasses.replace(spec.training, **changes)) if changes else spec


def cmd_train(args) -> None:
    from common import run
    spec = _spec(args)
    print(f"{args.framework} {args.variant} on {args.device}: {spec.name} - {spec.description}", flush=True)
    if spec.training.k_folds:
        return _train_folds(args, spec)
    model, history = run.train(args.framework, spec, args.variant, args.device, quiet=args.quiet)
    run.save_outputs(args.framework, spec, model, history, args.variant, args.device,
                     args.json, args.plot, args.save)
    for label, path in (("history", args.json), ("plot", args.plot), ("weights", args.save)):
        print(f"{label} written to {path}") if path else None


def _train_folds(args, spec) -> None:
    """k-fold cross-validation: one model per fold, each evaluated on its held-out fold."""
    import statistics

    from common import run
    from common.files import write_json
    finals = []
    for fold in range(spec.training.k_folds):
        print(f"fold {fold + 1}/{spec.training.k_folds}", flush=True)
        _, history = run.train(args.framework, spec, args.variant, args.device, quiet=args.quiet, fold=fold)
        finals.append(history[-1]["val_accuracy"])
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"{spec.training.k_folds}-fold accuracy: {statistics.mean(finals):.4f} +- {spread:.4f}")
    if args.json:
        write_json(args.json, {"spec": run.spec_to_dict(spec), "framework": args.framework,
                               "fold_accuracy": finals})


def cmd_compare(args) -> None:
    from tabulate import tabulate

    from common import run
    spec = _spec(args)
    tf_model = run.framework("tf").build_model(spec, device=args.device)
    start = run.framework("tf").get_weights(tf_model)
    data = run.datasets(spec)
    hist = {}
    for name in ("tf", "torch"):
        print(f"training {name} {args.variant} from the shared initial weights...", flush=True)
        _, hist[name] = run.train(name, spec, args.variant, args.device, weights=start, data=data, quiet=args.quiet)
    rows = [[a["epoch"], a["loss"], b["loss"], a["val_accuracy"], b["val_accuracy"],
             b["val_accuracy"] - a["val_accuracy"], a["seconds"], b["seconds"]]
            for a, b in zip(hist["tf"], hist["torch"])]
    print(tabulate(rows, headers=["epoch", "tf loss", "torch loss", "tf val_acc", "torch val_acc",
                                  "torch - tf", "tf s", "torch s"], floatfmt=".4f"))
    if args.plot:
        run.plot_curves({f"{n} {args.variant}": h for n, h in hist.items()}, args.plot, title=spec.name)
        print(f"plot written to {args.plot}")


def cmd_evaluate(args) -> None:
    from common import run
    spec, loss, acc, meta = run.evaluate_checkpoint(args.framework, args.weights, args.device)
    print(f"{args.framework}: {spec.name} weights from {meta.get('framework', '?')} "
          f"({meta.get('epochs', '?')} epochs): loss {loss:.4f} - accuracy {acc:.4f}")
    if meta.get("val_accuracy") is not None:
        print(f"accuracy reported by the trainer: {meta['val_accuracy']:.4f}")


def cmd_side_by_side(args) -> None:
    from common import side_by_side
    side_by_side.main(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="fetch, verify and cache the real MNIST; report its source")
    d.add_argument("--path", help="a Keras-style mnist.npz or a directory of the four IDX .gz files")
    d.set_defaults(func=cmd_data)
    c = sub.add_parser("config", help="list presets or show a resolved spec")
    c.add_argument("action", choices=["show", "list"])
    c.add_argument("name", nargs="?", default="conf1", help="preset name or TOML path")
    c.set_defaults(func=cmd_config)
    for name, func, helptext in (("train", cmd_train, "train one framework"),
                                 ("compare", cmd_compare, "train both from the same weights, side by side")):
        t = sub.add_parser(name, help=helptext)
        if name == "train":
            t.add_argument("--framework", required=True, choices=["tf", "torch"])
            t.add_argument("--json", help="write the history (with spec and environment) as JSON")
            t.add_argument("--save", help="write the trained weights as a canonical .npz checkpoint")
        t.add_argument("--config", default="conf1", help="preset name or TOML path (default conf1)")
        t.add_argument("--variant", default="book", choices=["book", "fast"])
        t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        t.add_argument("--epochs", type=int, help="override training.epochs")
        t.add_argument("--seed", type=int, help="override training.seed")
        t.add_argument("--plot", help="write the learning curves as PNG")
        t.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bars")
        t.set_defaults(func=func)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint saved by either framework")
    e.add_argument("--framework", required=True, choices=["tf", "torch"])
    e.add_argument("--weights", required=True, help="a .npz written by `train --save`")
    e.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    e.set_defaults(func=cmd_evaluate)
    s = sub.add_parser("side-by-side", help="the two implementations in aligned columns")
    s.add_argument("section", nargs="?", help="one section (for example train_step)")
    s.add_argument("--html", help="write a self-contained HTML page instead")
    s.add_argument("--width", type=int, help="terminal width (default: detected)")
    s.set_defaults(func=cmd_side_by_side)
    sub.add_parser("bench", help="benchmarks: twinbench bench --help (see bench/README.md)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the benchmark harness has its own options (argparse.REMAINDER drops leading --flags)
        from bench.cli import main as bench_main
        return bench_main(argv[1:])
    args = parser().parse_args(argv)
    from common.checkpoint import CheckpointError
    from common.data import DataError
    try:
        args.func(args)
    except (SpecError, DataError, CheckpointError, ValueError, RuntimeError) as exc:
        print(f"twinbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twinbench: interrupted", file=sys.stderr)
        return 130
    return 0
