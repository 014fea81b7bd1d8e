"""What `twinbench data | config | train | compare | evaluate | side-by-side` do."""
from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

import frameworks
from common.config import SpecError, describe, load_spec, preset_names, spec_to_dict, to_toml
from common.history import COMPLETE
from common.text import plural, signed
from twinbench import run


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


def spec_of(args):
    """The spec of --config with the --epochs / --seed overrides."""
    spec = load_spec(args.config)
    changes = {k: v for k, v in (("epochs", args.epochs), ("seed", getattr(args, "seed", None))) if v is not None}
    return dataclasses.replace(spec, training=dataclasses.replace(spec.training, **changes)) if changes else spec


def refuse_overwrite(args, outputs: tuple[str, ...], resumable: tuple[str, ...] = ()) -> None:
    """The one rule for every file a command writes: SpecError, before anything runs, when an
    output option names an existing file that neither --overwrite (nor, for the files a run
    continues, --resume) says what to do with. outputs: the command's output options ("json",
    "plot"...); resumable: those --resume continues (it offers --resume only where it can)."""
    resume = getattr(args, "resume", False)
    if resume and args.overwrite:
        raise SpecError("--resume and --overwrite: choose one (continue the saved run, or replace it)")
    for option in outputs:
        path = getattr(args, option, None)
        if not path or not Path(path).exists() or args.overwrite or (resume and option in resumable):
            continue
        flag = f"--{option.replace('_', '-')}"
        if option in resumable:
            raise SpecError(f"{flag} {path} exists: add --resume to continue that run or --overwrite to replace it")
        raise SpecError(f"{flag} {path} exists: add --overwrite to replace it")


def cmd_train(args) -> None:
    spec = spec_of(args)
    refuse_overwrite(args, ("json", "save", "plot"), resumable=("json", "save"))
    start = "canonical initial weights" if args.canonical_start else f"{args.framework}'s own initializers"
    print(f"{args.framework} {args.variant} on {args.device}: {spec.name} - {spec.description or describe(spec)}; "
          f"{plural(spec.training.epochs, 'epoch')} from {start}, seed {spec.training.seed}", flush=True)
    run.warn_if_busy()
    if spec.training.k_folds:
        return train_folds(args, spec)
    from common import reference
    weights = reference.start_weights(spec, spec.training.seed) if args.canonical_start else None
    _, history = run.train(args.framework, spec, args.variant, args.device, weights=weights, quiet=args.quiet,
                           json_path=args.json, save_path=args.save, resume=args.resume)
    print(run.result_line(args.framework, args.variant, spec, history), flush=True)
    if args.plot:
        run.save_plot(args.framework, spec, history, args.variant, args.plot)
    for label, path in (("history", args.json), ("plot", args.plot), ("weights", args.save)):
        print(f"{label} written to {path}") if path else None


def train_folds(args, spec) -> None:
    """k-fold cross-validation: one model per fold, each evaluated on its held-out fold; the
    JSON (--json) holds every fold's epochs so far and is rewritten after each epoch."""
    if args.resume or args.save:
        raise ValueError("--resume and --save: not available for k-fold runs (training.k_folds > 0)")
    record = run.Record(args.json, {**run.header(args.framework, spec, args.variant, args.device), "folds": []})
    finals = []
    for fold in range(spec.training.k_folds):
        print(f"fold {fold + 1}/{spec.training.k_folds}", flush=True)
        fold_record = FoldRecord(record, fold)
        _, history = run.train(args.framework, spec, args.variant, args.device, quiet=args.quiet, fold=fold,
                               record=fold_record, json_path=args.json)
        finals.append(history[-1]["val_accuracy"])
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"{spec.training.k_folds}-fold accuracy: {statistics.mean(finals):.4f} +- {spread:.4f}")
    record.finish(COMPLETE, fold_accuracy=finals, mean=statistics.mean(finals), std=spread)


class FoldRecord(run.Record):
    """One fold's part of a k-fold run's record: its epochs land in record.data["folds"][fold]."""

    def __init__(self, parent: run.Record, fold: int):
        self.parent, self.entry = parent, {"fold": fold, "status": "running", "history": []}
        parent.data["folds"].append(self.entry)
        self.data = self.entry

    def write(self) -> None:
        self.parent.data["status"] = self.entry["status"] if self.entry["status"] != COMPLETE else "running"
        self.parent.write()


def cmd_compare(args) -> None:
    from common import reference
    from common.data import datasets
    spec = spec_of(args)
    refuse_overwrite(args, ("json", "plot"))
    print(f"compare {args.variant} on {args.device}: {spec.name} - {spec.description or describe(spec)}; "
          f"{plural(spec.training.epochs, 'epoch')} in each framework from the same canonical weights, "
          f"seed {spec.training.seed}", flush=True)
    run.warn_if_busy()
    start = reference.start_weights(spec, spec.training.seed)
    print("loading MNIST...", flush=True)
    data = datasets(spec)
    record = run.Record(args.json, {"spec": spec_to_dict(spec), "variant": args.variant, "device": args.device,
                                    "environment": frameworks.describe(), "frameworks": {}})
    hist = {}
    for line in frameworks.skipped():
        print(line, flush=True)
    for name in frameworks.available():
        print(f"training {name} {args.variant} from the shared initial weights...", flush=True)
        part = SubRecord(record, name)
        _, hist[name] = run.train(name, spec, args.variant, args.device, weights=start, data=data,
                                  quiet=args.quiet, record=part, json_path=args.json, can_resume=False)
    record.finish(COMPLETE)
    print(compare_table(hist, run.eval_label(spec)))
    if args.plot:
        from plots import plot_curves
        plot_curves({f"{n} {args.variant}": h for n, h in hist.items()}, args.plot,
                    title=f"{spec.name}: {spec.description or describe(spec)}")
        print(f"plot written to {args.plot}")
    print(f"histories written to {args.json}") if args.json else None


def compare_table(hist: dict[str, list[dict]], label: str = "test") -> str:
    """Per epoch, each framework's loss, held-out accuracy (`label`_acc) and seconds, and the
    difference of the accuracies when two ran."""
    from tabulate import tabulate
    names = list(hist)
    rows = [[epoch[0]["epoch"], *(f"{e['loss']:.4f}" for e in epoch), *(f"{e['val_accuracy']:.4f}" for e in epoch),
             *([signed(epoch[1]["val_accuracy"] - epoch[0]["val_accuracy"])] if len(epoch) == 2 else []),
             *(f"{e['seconds']:.2f}" for e in epoch)] for epoch in zip(*hist.values())]
    headers = ["epoch", *(f"{n} loss" for n in names), *(f"{n} {label}_acc" for n in names),
               *([f"{names[1]} - {names[0]}"] if len(names) == 2 else []), *(f"{n} s" for n in names)]
    return tabulate(rows, headers=headers, disable_numparse=True)


class SubRecord(run.Record):
    """One framework's part of a compare run's record (record.data["frameworks"][name])."""

    def __init__(self, parent: run.Record, name: str):
        self.parent = parent
        self.data = parent.data["frameworks"].setdefault(name, {"status": "running", "history": []})

    def write(self) -> None:
        states = {v["status"] for v in self.parent.data["frameworks"].values()}
        self.parent.data["status"] = next((s for s in ("diverged", "interrupted") if s in states), "running")
        self.parent.write()


def cmd_evaluate(args) -> None:
    from common.files import write_json
    refuse_overwrite(args, ("json",))
    print(f"evaluating {args.weights} in {args.framework} on the test set...", flush=True)
    spec, loss, acc, meta = run.evaluate_checkpoint(args.framework, args.weights, args.device)
    print(f"{args.framework}: {spec.name} weights from {meta.get('framework', '?')} "
          f"({meta.get('epochs', '?')} epochs): loss {loss:.4f} - accuracy {acc:.4f}")
    if meta.get("val_accuracy") is not None:
        print(f"accuracy reported by the trainer: {meta['val_accuracy']:.4f}")
    if args.json:  # checked before evaluating (cmd_evaluate)
        write_json(args.json, {"status": COMPLETE, "spec": spec_to_dict(spec), "framework": args.framework,
                               "weights": str(args.weights), "trained_by": meta.get("framework"),
                               "epochs": meta.get("epochs"), "loss": loss, "accuracy": acc})
        print(f"result written to {args.json}")


def cmd_side_by_side(args) -> None:
    from reader.cli import main as reader_main
    refuse_overwrite(args, ("html",))
    reader_main(args)
