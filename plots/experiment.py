"""The chapter's figure for an experiment: test accuracy per epoch, one panel per spec, each
framework a line (the mean over seeds) in a band (min to max over seeds); the frameworks'
own-defaults arm dashed beside it; the chapter's printout as black dots where known."""
from __future__ import annotations

from pathlib import Path

from plots.curves import figure, save


def plot_experiment(summary: dict, path: str | Path, title: str = "") -> Path:
    specs = summary["specs"]
    plt = figure()
    fig, axes = plt.subplots(1, max(len(specs), 1), figsize=(3.4 * max(len(specs), 1), 3.6), squeeze=False,
                             sharey=True)
    for ax, row in zip(axes[0], specs):
        for i, fw in enumerate(summary["frameworks"]):
            b = row["frameworks"][fw]["band"]
            if b["epochs"]:
                ax.fill_between(b["epochs"], b["min"], b["max"], color=f"C{i}", alpha=0.25, lw=0)
                ax.plot(b["epochs"], b["mean"], "-o", color=f"C{i}", lw=1.5, ms=2.5, label=f"{fw} (n={b['n']})")
            d = row["defaults"].get(fw)
            if d and d["band"]["epochs"]:
                ax.plot(d["band"]["epochs"], d["band"]["mean"], "--", color=f"C{i}", lw=1.2,
                        label=f"{fw}, own defaults")
        chapter = row.get("chapter")
        if chapter:
            printed = chapter["printed"]["test_accuracy"]
            ax.plot(range(1, len(printed) + 1), printed, "ko", ms=3, label="chapter's printout")
        ax.set_title(row["spec"]), ax.set_xlabel("epoch"), ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    axes[0][0].set_ylabel("test accuracy")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)
