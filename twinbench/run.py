"""Train, compare and evaluate: what the CLI commands do, framework-neutral.

Every run keeps its record on disk as it goes: the JSON history (`--json`) and the
checkpoint (`--save`: weights, optimizer state and the history so far) are rewritten
atomically after every epoch, so Ctrl-C or a crash leaves both holding every finished
epoch, and `--resume` continues from them.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import frameworks
from common import checkpoint
from common.config import SpecError, spec_to_dict
from common.data import datasets
from common.files import write_json
from common.history import COMPLETE, DIVERGED, INTERRUPTED, RUNNING, Diverged
from common.spec import Spec


class RunStopped(Exception):
    """A run that ended early (interrupted or diverged); the message says what was kept where."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def eval_label(spec: Spec) -> str:
    """'test' when the evaluation after each epoch is on the test set, else 'val'."""
    return "test" if spec.training.evaluation == "test" and not spec.training.k_folds else "val"


def epoch_line(row: dict, epochs: int, label: str = "val") -> str:
    """One line per epoch, the same for both frameworks; a fast fit's first epoch also says how
    long building its epoch took (compiling, or loading from the compile cache), apart."""
    built = f" - compile: {row['compile_seconds']:.1f}s" if "compile_seconds" in row else ""
    return (f"Epoch {row['epoch']}/{epochs} loss: {row['loss']:.4f} - acc: {row['accuracy']:.4f}"
            f" - {label}_loss: {row['val_loss']:.4f} - {label}_acc: {row['val_accuracy']:.4f}"
            f" - time: {row['seconds']:.1f}s{built}")


def result_line(name: str, variant: str, spec: Spec, history: list[dict]) -> str:
    """The run's result in one line (printed under --quiet too)."""
    last, label = history[-1], eval_label(spec)
    return (f"{name} {variant} {spec.name}: {len(history)} epochs, loss {last['loss']:.4f} - acc "
            f"{last['accuracy']:.4f} - {label}_loss {last['val_loss']:.4f} - {label}_acc {last['val_accuracy']:.4f} "
            f"({sum(r['seconds'] for r in history):.1f} s training)")


def progress_bars(spec: Spec, n_train: int, enabled: bool | None = None):
    """A factory of tqdm bars (one per epoch) when stderr is a terminal, else None."""
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if not enabled:
        return None
    from tqdm import tqdm
    steps = -(-n_train // spec.training.batch_size)
    return lambda epoch: tqdm(total=steps, desc=f"epoch {epoch + 1}", unit="step", leave=False, mininterval=0.5)


class Record:
    """The JSON record of one run (None path: kept in memory only), rewritten after each epoch."""

    def __init__(self, path: str | Path | None, header: dict, history: list[dict] | None = None):
        self.path = path
        self.data = {**header, "status": RUNNING, "history": list(history or [])}

    def add(self, row: dict) -> None:
        self.data["history"].append(row)
        self.write()

    def finish(self, status: str, **extra) -> None:
        self.data.update(status=status, **extra)
        self.write()

    def write(self) -> None:
        if self.path:
            write_json(self.path, self.data)


def header(name: str, spec: Spec, variant: str, device: str) -> dict:
    """What a run record says about the run before its epochs."""
    return {"spec": spec_to_dict(spec), "framework": name, "variant": variant, "device": device,
            "environment": frameworks.describe((name,))}


def resume_point(path: str, name: str, spec: Spec, variant: str) -> tuple[dict, dict, list[dict]]:
    """(weights, optimizer state, history) of an interrupted run's checkpoint; SpecError naming
    the difference when the checkpoint is not of this run (spec, framework, variant)."""
    try:
        saved, weights, meta = checkpoint.load(path)
    except checkpoint.CheckpointError as exc:
        raise SpecError(f"--resume: {exc}") from None
    # the run's length and its labels may change on resuming; the math may not
    ours = dataclasses.replace(spec, name=saved.name, description=saved.description,
                               training=dataclasses.replace(spec.training, epochs=saved.training.epochs))
    diff = checkpoint.differences(saved, ours)
    if diff:
        raise SpecError(f"--resume: {path} was saved for another spec: it differs in {', '.join(diff)}")
    for key, value in (("framework", name), ("variant", variant)):
        if meta.get(key) != value:
            raise SpecError(f"--resume: {path} was saved by {key} {meta.get(key)!r}, not {value!r}")
    if "optimizer_state" not in meta:
        raise SpecError(f"--resume: {path} holds no optimizer state (saved by an older twinbench)")
    return weights, meta["optimizer_state"], list(meta.get("history", []))


def train(name: str, spec: Spec, variant: str = "book", device: str = "cpu", epochs: int | None = None,
          weights: dict | None = None, data: tuple | None = None, quiet: bool = False, fold: int | None = None,
          json_path: str | None = None, save_path: str | None = None, resume: bool = False,
          record: Record | None = None):
    """Build, load `weights` (or resume), fit; returns (model, history).

    After every epoch the JSON record (json_path, or `record`) and the checkpoint (save_path)
    are rewritten. Raises RunStopped when the run is interrupted or diverges, after
    recording why."""
    fw = frameworks.get(name)
    api = fw.variant(variant)
    model = api.build_model(spec, device=device)
    epochs = epochs or spec.training.epochs
    history: list[dict] = []
    if resume:
        if not save_path:
            raise SpecError("--resume needs --save: the checkpoint the interrupted run wrote")
        weights, state, history = resume_point(save_path, name, spec, variant)
        api.set_optimizer_state(model, spec, state)
        if len(history) >= epochs:
            raise SpecError(f"--resume: {save_path} already holds {len(history)} epochs (of {epochs} asked)")
    if weights is not None:
        api.set_weights(model, weights)
    record = record or Record(json_path, header(name, spec, variant, device), history)
    record.data["optimizer"] = api.describe_optimizer(spec)  # torch.optim's / Keras's own class, or the spec rule
    data = data or datasets(spec, fold)

    def on_epoch(row: dict) -> None:
        if "tier" in row:  # a fast fit's first epoch says which tier built it (common.tiers)
            record.data.setdefault("environment", {})["tier"] = row["tier"]
        history.append(row)
        record.add(row)
        if save_path:
            checkpoint.save(save_path, spec, api.get_weights(model), meta(name, variant, history),
                            api.get_optimizer_state(model, spec))
        if not quiet:
            print(epoch_line(row, epochs, eval_label(spec)), flush=True)

    if not quiet:
        print(f"optimizer: {record.data['optimizer']}", flush=True)
    if variant == "fast" and not quiet:
        print("building the fast epoch: compiling it, or loading it from the compile cache...", flush=True)
    try:
        api.fit(model, spec, data, epochs=epochs, initial_epoch=len(history), on_epoch=on_epoch,
                progress=None if quiet else progress_bars(spec, len(data[0])))
    except KeyboardInterrupt:
        record.finish(INTERRUPTED)
        raise RunStopped(stopped_message("interrupted", len(history), epochs, json_path, save_path), 130) from None
    except Diverged as exc:
        record.finish(DIVERGED, reason=str(exc))
        raise RunStopped(f"{exc}; stopped (recorded as diverged"
                         + (f" in {json_path})" if json_path else ")"), 3) from None
    record.finish(COMPLETE)
    return model, history


def meta(name: str, variant: str, history: list[dict]) -> dict:
    """The checkpoint's metadata: who trained it, how far, and the history so far."""
    last = history[-1] if history else {}
    return {"framework": name, "variant": variant, "epochs": len(history), "history": history,
            "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss")}


def stopped_message(what: str, done: int, epochs: int, json_path: str | None, save_path: str | None) -> str:
    """Where an interrupted run's finished epochs are, and how to go on."""
    kept = [f"history in {json_path} (status {what})"] if json_path else []
    kept += [f"checkpoint in {save_path}"] if save_path and done else []
    where = "; ".join(kept) if kept else "nothing written (no --json or --save)"
    again = "; continue with the same command and --resume" if save_path and done else ""
    return f"{what} after {done} of {epochs} epochs: {where}{again}"


def save_plot(name: str, spec: Spec, history: list[dict], variant: str, plot_path: str) -> None:
    """The learning curves of one run as PNG."""
    from plots import plot_curves
    plot_curves({f"{name} {variant}": history}, plot_path, title=f"{spec.name}: {spec.description}")


def evaluate_checkpoint(name: str, path: str, device: str = "cpu") -> tuple[Spec, float, float, dict]:
    """Evaluate a checkpoint saved by either framework; returns (spec, loss, accuracy, meta)."""
    spec, weights, meta_ = checkpoint.load(path)
    fw = frameworks.get(name).book()
    model = fw.build_model(spec, device=device)
    fw.set_weights(model, weights)
    _, _, x_eval, y_eval = datasets(spec)
    loss, acc = fw.evaluate(model, spec, x_eval, y_eval)
    return spec, loss, acc, meta_
