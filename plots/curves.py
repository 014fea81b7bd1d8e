"""Learning curves of fit histories (one dict per epoch: loss, accuracy, val_loss, val_accuracy)."""
from __future__ import annotations

from pathlib import Path

from plots.style import figure, identical_to, integer_axis, legend_outside, run_style, save, wrap

KEYS = ("loss", "accuracy")
# (label, history key prefix, line style, marker): a 1-epoch run's two points differ by marker
PARTS = (("train", "", "--", "s"), ("eval", "val_", "-", "o"))


def curves_figure(histories: dict[str, list[dict]], title: str = ""):
    """Loss and accuracy per epoch: one colour per run, train dashed with squares and
    evaluation solid with circles, every epoch a marker (a 1-epoch run is a point per series).
    A series that repeats an earlier run's values is drawn thinner on top of it and named
    identical in the legend. A missing or non-finite value (a diverged epoch) leaves a gap."""
    plt = figure()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
    # identical in both panels, so that each series has one legend entry
    same = identical_to({f"{run} {part}": [_value(r, prefix + key) for key in KEYS for r in hist]
                         for run, hist in histories.items() for part, prefix, _, _ in PARTS})
    for ax, key in zip(axes, KEYS):
        for i, (run, hist) in enumerate(histories.items()):
            for part, prefix, ls, marker in PARTS:
                label = f"{run} {part}"
                note = f" (identical to {same[label]})" if label in same else ""
                ax.plot([r["epoch"] for r in hist], [_value(r, prefix + key) for r in hist], ls=ls,
                        **run_style(i, marker), label=label + note)
        integer_axis(ax, [r["epoch"] for hist in histories.values() for r in hist])
        ax.set_xlabel("epoch"), ax.set_ylabel(key), ax.grid(alpha=0.3)
    legend_outside(fig, axes, ncol=2)
    fig.suptitle(wrap(title, 120), fontsize=10)
    return fig


def plot_curves(histories: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """curves_figure written as PNG."""
    return save(curves_figure(histories, title), path)


def _value(row: dict, key: str) -> float:
    v = row.get(key)
    return float("nan") if v is None else float(v)
