"""Learning curves of fit histories (one dict per epoch: loss, accuracy, val_loss, val_accuracy)."""
from __future__ import annotations

from pathlib import Path

from common.files import atomic_write


def figure():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path: str | Path) -> Path:
    """Write the figure as PNG atomically and close it."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    figure().close(fig)
    return Path(path)


def plot_curves(histories: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch (train dashed, evaluation solid), one colour per run.
    A value that is missing or not finite (a diverged epoch) leaves a gap."""
    plt = figure()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (label, hist) in enumerate(histories.items()):
        ep = [r["epoch"] for r in hist]
        for ax, key in zip(axes, ("loss", "accuracy")):
            ax.plot(ep, [_value(r, key) for r in hist], "--", color=f"C{i}", label=f"{label} train")
            ax.plot(ep, [_value(r, f"val_{key}") for r in hist], "-o", color=f"C{i}", ms=3, label=f"{label} eval")
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch"), ax.set_ylabel(key), ax.grid(alpha=0.3), ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def _value(row: dict, key: str) -> float:
    v = row.get(key)
    return float("nan") if v is None else float(v)
