"""Train, compare and evaluate: what the CLI commands do, framework-neutral.

Every run keeps its record on disk as it goes: the JSON history (`--json`) and the
checkpoint (`--save`: weights, optimizer state and the history so far) are rewritten
atomically after every epoch, so Ctrl-C or a crash leaves both holding every finished
epoch, and `--resume` continues from them.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import frameworks
from common import canonical, checkpoint, interrupts
from common.environment import load_average, usable_cores
from common.text import plural
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
    return (f"{name} {variant} {spec.name}: {plural(len(history), 'epoch')}, loss {last['loss']:.4f} - acc "
            f"{last['accuracy']:.4f} - {label}_loss {last['val_loss']:.4f} - {label}_acc {last['val_accuracy']:.4f} "
            f"({sum(r['seconds'] for r in history):.1f} s training)")


def progress_bars(spec: Spec, n_train: int, epochs: int, enabled: bool | None = None):
    """A factory of tqdm bars (one per epoch, "epoch k/N") when stderr is a terminal, else None."""
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if not enabled:
        return None
    from tqdm import tqdm
    steps = -(-n_train // spec.training.batch_size)
    return lambda epoch: tqdm(total=steps, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False,
                              mininterval=0.5)


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
    missing = sorted(set(canonical.state_names(spec)) - set(meta["optimizer_state"]))
    if missing:  # e.g. `step`, kept since 2026-12-08 for dropout masks and decaying rates
        raise SpecError(f"--resume: {path} holds no optimizer state entries {', '.join(missing)} (saved by an older"
                        " twinbench, which did not keep them for this spec); train again without --resume")
    return weights, meta["optimizer_state"], list(meta.get("history", []))


def train(name: str, spec: Spec, variant: str = "fast", device: str = "cpu", epochs: int | None = None,
          weights: dict | None = None, data: tuple | None = None, quiet: bool = False, fold: int | None = None,
          json_path: str | None = None, save_path: str | None = None, resume: bool = False,
          record: Record | None = None, can_resume: bool = True):
    """Build, load `weights` (or resume), fit; returns (model, history). can_resume: whether the
    command offers --save and --resume (its hint after Ctrl-C says so only then).

    After every epoch the JSON record (json_path, or `record`) and the checkpoint (save_path)
    are rewritten. Raises RunStopped when the run is interrupted (in any phase: loading the data,
    building, compiling, training, writing; common.interrupts) or diverges, after recording why."""
    say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))
    fw = frameworks.get(name)
    epochs = epochs or spec.training.epochs
    state, history = None, []
    if resume:
        weights, state, history = resume_from(save_path, json_path, name, spec, variant, epochs, say)
    record = record or Record(json_path, {"spec": spec_to_dict(spec), "framework": name, "variant": variant,
                                          "device": device}, history)
    try:
        api = fw.variant(variant)
        model = api.build_model(spec, device=device)
        if state is not None:
            api.set_optimizer_state(model, spec, state)
        if weights is not None:
            api.set_weights(model, weights)
        record.data.update(optimizer=api.describe_optimizer(spec), environment=frameworks.describe((name,)))
        say(f"optimizer: {record.data['optimizer']}")
        interrupts.check()
        if data is None:
            say("loading MNIST...")
            data = datasets(spec, fold)
            interrupts.check()
        history = _fit(api, model, spec, variant, data, epochs, history, record, save_path, say, quiet, name)
    except KeyboardInterrupt:
        record.finish(INTERRUPTED)
        raise RunStopped(stopped_message("interrupted", len(history), epochs, json_path, save_path, can_resume),
                         130) from None
    except Diverged as exc:
        record.finish(DIVERGED, reason=str(exc))
        raise RunStopped(f"{exc}; stopped (recorded as diverged"
                         + (f" in {json_path})" if json_path else ")"), 3) from None
    record.finish(COMPLETE)
    return model, history


def _fit(api, model, spec: Spec, variant: str, data: tuple, epochs: int, history: list, record: Record,
         save_path: str | None, say, quiet: bool, name: str) -> list[dict]:
    """The fit of `train`, recording and checkpointing every epoch as it ends; the history so far."""
    def on_epoch(row: dict) -> None:
        if "tier" in row:  # a fast fit's first epoch says which tier built it (common.tiers)
            record.data.setdefault("environment", {})["tier"] = row["tier"]
            if row["tier"] == "book":
                say("fast: no compiled tier serves this spec here; each batch runs the book's step (tier 'book')")
        history.append(row)
        record.add(row)
        if save_path:
            checkpoint.save(save_path, spec, api.get_weights(model), meta(name, variant, history),
                            api.get_optimizer_state(model, spec))
        say(epoch_line(row, epochs, eval_label(spec)))

    left = epochs - len(history)
    if variant == "fast":
        say("building the fast epoch: compiling it, or loading it from the compile cache...")
    else:
        say(f"training {plural(left, 'epoch')} of {len(data[0]):,} examples...")
    api.fit(model, spec, data, epochs=epochs, initial_epoch=len(history), on_epoch=on_epoch,
            progress=None if quiet else progress_bars(spec, len(data[0]), epochs))
    return history


def resume_from(save_path: str | None, json_path: str | None, name: str, spec: Spec, variant: str, epochs: int,
                say) -> tuple[dict | None, dict | None, list[dict]]:
    """(weights, optimizer state, history) to continue an interrupted run from its checkpoint; when
    the run stopped before its first epoch ended (no checkpoint yet, and a record, if any, with no
    epoch), (None, None, []): it starts again from the beginning."""
    if not save_path:
        raise SpecError("--resume needs --save: the checkpoint the interrupted run wrote")
    if not Path(save_path).exists():
        done = _recorded_epochs(json_path)
        if done:
            raise SpecError(f"--resume: {save_path}: no such file, but {json_path} records {plural(done, 'epoch')}: "
                            "was the checkpoint moved?")
        say(f"--resume: no checkpoint yet ({save_path}): the run stopped before its first epoch ended; starting "
            "from the beginning")
        return None, None, []
    weights, state, history = resume_point(save_path, name, spec, variant)
    if len(history) >= epochs:
        raise SpecError(f"--resume: {save_path} already holds {plural(len(history), 'epoch')} (of {epochs} asked)")
    return weights, state, history


def _recorded_epochs(json_path: str | None) -> int:
    try:
        return len(json.loads(Path(json_path).read_text()).get("history") or []) if json_path else 0
    except (OSError, ValueError):
        return 0


def warn_if_busy(suggestion: str = "OMP_NUM_THREADS=1 before the command runs PyTorch on one thread "
                                     "(TensorFlow runs on one here already), which a shared machine slows far less") -> None:
    """One line on stderr when the machine is busy as the command starts (the 1-minute load above
    the cores this process may use): the frameworks' thread pools then wait on each other's cores."""
    load, cores = load_average(), usable_cores()
    if load is not None and load > cores:
        print(f"note: the machine is busy (load {load:.1f} on {plural(cores, 'core')}): timings will be slower and "
              f"vary; {suggestion}", file=sys.stderr, flush=True)


def meta(name: str, variant: str, history: list[dict]) -> dict:
    """The checkpoint's metadata: who trained it, how far, and the history so far."""
    last = history[-1] if history else {}
    return {"framework": name, "variant": variant, "epochs": len(history), "history": history,
            "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss")}


def stopped_message(what: str, done: int, epochs: int, json_path: str | None, save_path: str | None,
                    can_resume: bool = True) -> str:
    """Where an interrupted run's finished epochs are, and how to go on."""
    kept = [f"history in {json_path} (status {what})"] if json_path else []
    kept += [f"checkpoint in {save_path}"] if save_path and done else []
    where = "; ".join(kept) if kept else "nothing written (no --json or --save)"
    if save_path:
        again = "; continue with the same command and --resume"
    elif json_path:
        again = "; start again with the same command and --overwrite" + (
            " (with --save FILE a run can be resumed)" if can_resume else "")
    else:
        again = ""
    return f"{what} after {done} of {plural(epochs, 'epoch')}: {where}{again}"


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
