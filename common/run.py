"""Train, compare and evaluate: what the CLI commands do, framework-neutral."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from common import checkpoint
from common.config import spec_to_dict
from common.data import load_mnist
from common.environment import describe
from common.files import atomic_write, write_json
from common.spec import Spec

FRAMEWORKS = {"tf": "tf_impl", "torch": "torch_impl"}
VARIANTS = ("book", "fast")


def framework(name: str) -> ModuleType:
    """The implementation package of 'tf' or 'torch'."""
    if name not in FRAMEWORKS:
        raise ValueError(f"framework: expected one of {sorted(FRAMEWORKS)}, got {name!r}")
    return importlib.import_module(FRAMEWORKS[name])


def fit_function(name: str, variant: str):
    """`fit` of the book variant, or of the fast variant (`<framework>_impl.fast`)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    module = framework(name) if variant == "book" else importlib.import_module(f"{FRAMEWORKS[name]}.fast")
    return module.fit


def datasets(spec: Spec, fold: int | None = None) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_eval, y_eval) as the spec's `training.evaluation` says.

    test: all 60,000 training images, evaluated on the 10,000 test images.
    validation_split: the last `validation_split` fraction of the training set
    is held out (Keras's convention). With `fold`, the k-fold split number `fold`.
    """
    t = spec.training
    x, y, x_test, y_test = load_mnist(standardize=t.standardize, dtype=t.dtype)
    if fold is not None:
        held = np.array_split(np.arange(len(x)), t.k_folds)[fold]
        keep = np.setdiff1d(np.arange(len(x)), held)
        return x[keep], y[keep], x[held], y[held]
    if t.evaluation == "test":
        return x, y, x_test, y_test
    n = len(x) - int(round(len(x) * t.validation_split))
    return x[:n], y[:n], x[n:], y[n:]


def epoch_line(row: dict, epochs: int) -> str:
    """One line per epoch, the same for both frameworks."""
    return (f"Epoch {row['epoch']}/{epochs} loss: {row['loss']:.4f} - acc: {row['accuracy']:.4f}"
            f" - val_loss: {row['val_loss']:.4f} - val_acc: {row['val_accuracy']:.4f}"
            f" - time: {row['seconds']:.1f}s")


def progress_bars(spec: Spec, n_train: int, enabled: bool | None = None):
    """A factory of tqdm bars (one per epoch) when stderr is a terminal, else None."""
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if not enabled:
        return None
    from tqdm import tqdm
    steps = -(-n_train // spec.training.batch_size)
    return lambda epoch: tqdm(total=steps, desc=f"epoch {epoch + 1}", unit="step", leave=False, mininterval=0.5)


def train(name: str, spec: Spec, variant: str = "book", device: str = "cpu", epochs: int | None = None,
          weights: dict | None = None, data: tuple | None = None, quiet: bool = False, fold: int | None = None):
    """Build, optionally load `weights`, and fit; returns (model, history)."""
    fw, fit = framework(name), fit_function(name, variant)
    model = fw.build_model(spec, device=device)
    if weights is not None:
        fw.set_weights(model, weights)
    data = data or datasets(spec, fold)
    epochs = epochs or spec.training.epochs
    show = None if quiet else (lambda row: print(epoch_line(row, epochs), flush=True))
    history = fit(model, spec, data, epochs=epochs, on_epoch=show,
                  progress=None if quiet else progress_bars(spec, len(data[0])))
    return model, history


def save_outputs(name: str, spec: Spec, model, history: list[dict], variant: str, device: str,
                 json_path: str | None = None, plot_path: str | None = None, save_path: str | None = None) -> None:
    """History JSON, learning-curve PNG and canonical checkpoint, each written atomically."""
    record = {"spec": spec_to_dict(spec), "framework": name, "variant": variant, "device": device,
              "environment": describe((name,)), "history": history}
    if json_path:
        write_json(json_path, record)
    if plot_path:
        plot_curves({f"{name} {variant}": history}, plot_path, title=spec.name)
    if save_path:
        last = history[-1] if history else {}
        checkpoint.save(save_path, spec, framework(name).get_weights(model),
                        {"framework": name, "variant": variant, "epochs": len(history),
                         "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss")})


def plot_curves(histories: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch (train dashed, evaluation solid), one colour per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (label, hist) in enumerate(histories.items()):
        ep = [r["epoch"] for r in hist]
        for ax, key in zip(axes, ("loss", "accuracy")):
            ax.plot(ep, [r[key] for r in hist], "--", color=f"C{i}", label=f"{label} train")
            ax.plot(ep, [r[f"val_{key}"] for r in hist], "-o", color=f"C{i}", ms=3, label=f"{label} eval")
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch"), ax.set_ylabel(key), ax.grid(alpha=0.3), ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return Path(path)


def evaluate_checkpoint(name: str, path: str, device: str = "cpu") -> tuple[Spec, float, float, dict]:
    """Evaluate a checkpoint saved by either framework; returns (spec, loss, accuracy, meta)."""
    spec, weights, meta = checkpoint.load(path)
    fw = framework(name)
    model = fw.build_model(spec, device=device)
    fw.set_weights(model, weights)
    _, _, x_eval, y_eval = datasets(spec)
    loss, acc = fw.evaluate(model, spec, x_eval, y_eval)
    return spec, loss, acc, meta
