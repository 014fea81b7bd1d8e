"""The chapter's figure for an experiment: test accuracy per epoch, one panel per spec, each
framework a line (the mean over seeds) in a band (min to max over seeds); the frameworks'
own-defaults arm dashed beside it; the chapter's printout as black stars where known
and comparable (runs on all 60,000 examples; over the epochs run)."""
from __future__ import annotations

import math
from pathlib import Path

from plots.style import figure, identical_to, integer_axis, legend_outside, run_style, save, wrap

COLUMNS = 3  # panels per row: five specs fill two rows of readable panels, not one strip
PANEL = (4.2, 3.3)  # inches per panel; a one-spec run still gets a full-sized panel


def experiment_figure(summary: dict, title: str = ""):
    """The figure of a summary (twinbench.experiment.summary); one legend outside the panels."""
    specs = summary["specs"]
    n = max(len(specs), 1)
    cols, rows = min(n, COLUMNS), math.ceil(n / COLUMNS)
    plt = figure()
    fig, axes = plt.subplots(rows, cols, figsize=(max(PANEL[0] * cols, 6.5), PANEL[1] * rows + 0.9), squeeze=False,
                             sharey=True, layout="constrained")
    panels = axes.ravel()
    for ax, row in zip(panels, specs):
        _panel(ax, row, summary["frameworks"], _chapter_comparable(summary))
    for ax in panels[len(specs):]:
        ax.set_visible(False)
    held = all(row.get("evaluation") == "validation_split" for row in specs)
    for ax in axes[:, 0]:  # a spec that evaluates on a held-out split of its training images says so
        ax.set_ylabel("validation accuracy" if held else "test accuracy")
    legend_outside(fig, panels[:len(specs)])
    width = int(fig.get_figwidth() * 14)  # characters of 10-point text across the figure
    fig.suptitle("\n".join(wrap(t, width) for t in (title, size_note(summary), _printout_note(summary)) if t),
                 fontsize=10)
    return fig


def size_note(summary: dict) -> str:
    """A line saying the run was smaller than the chapter's (fewer images or epochs), or ''."""
    settings = summary.get("settings") or {}
    n, epochs = settings.get("train_examples"), settings.get("epochs")
    parts = ([f"{n:,} of 60,000 training images"] if n else []) + \
        ([f"{epochs} epoch{'s' if epochs != 1 else ''} (the specs ask for their own)"] if epochs else [])
    return f"a small run: {', '.join(parts)}; its accuracies are not the chapter's" if parts else ""


def _chapter_comparable(summary: dict) -> bool:
    """Whether the runs trained on what the chapter did (all 60,000 examples): a smaller run's
    accuracies sit far below the printout, which would squeeze them into a corner."""
    return not (summary.get("settings") or {}).get("train_examples")


def _printout_note(summary: dict) -> str:
    """Why a summary with a chapter printout shows none (said, so that its absence is not a puzzle)."""
    if _chapter_comparable(summary) or not any(r.get("chapter") for r in summary["specs"]):
        return ""
    return (f"the chapter's printout is not drawn: {summary['settings']['train_examples']:,} training examples here, "
            "60,000 in the chapter")


def _panel(ax, row: dict, fws: list[str], chapter_comparable: bool = True) -> None:
    """One spec: each framework's band and mean (a mean that repeats another framework's is
    named identical), the own-defaults arm, the chapter's printout over the epochs run."""
    bands = {fw: row["frameworks"][fw]["band"] for fw in fws}
    same = identical_to({fw: b["mean"] for fw, b in bands.items() if b["epochs"]})
    epochs: list[int] = []
    for i, fw in enumerate(fws):
        b = bands[fw]
        if b["epochs"]:
            ax.fill_between(b["epochs"], b["min"], b["max"], color=f"C{i}", alpha=0.2, lw=0)
            ax.plot(b["epochs"], b["mean"], "-", **_small(run_style(i, "o")), label=f"{fw}: mean, min-max band")
            epochs += b["epochs"]
        d = row["defaults"].get(fw)
        if d and d["band"]["epochs"]:
            ax.plot(d["band"]["epochs"], d["band"]["mean"], ":", color=f"C{i + 2}", lw=2.0, marker="x", ms=4, zorder=5,
                    label=f"{fw}, own defaults: mean")  # a colour, line and marker of its own: apart from the means
    chapter = row.get("chapter")
    if chapter and chapter_comparable:
        printed = chapter["printed"]["test_accuracy"][:max(epochs, default=0)]
        ax.plot(range(1, len(printed) + 1), printed, "k*", ms=6, zorder=9, label="chapter's printout")
    integer_axis(ax, epochs)
    ax.set_title(_panel_title(row, same), fontsize=8)
    ax.set_xlabel("epoch"), ax.grid(alpha=0.3)


def _small(style: dict) -> dict:
    """run_style with smaller markers: a 20-epoch mean has a marker per epoch."""
    return {**style, "ms": style["ms"] * 0.6}


def _panel_title(row: dict, same: dict[str, str]) -> str:
    """The spec's name, seed count and which means are identical (said here, not in the shared
    legend, since it holds in some panels only); its description (when the summary has it)."""
    counts = {fw: f["n"] for fw, f in row["frameworks"].items()}
    notes = [f"{next(iter(counts.values()))} seeds" if len(set(counts.values())) == 1
             else ", ".join(f"{fw} {n}" for fw, n in counts.items()) + " seeds"]
    notes += [f"{fw} mean identical to {other}" for fw, other in same.items()]
    description = "\n" + wrap(row["description"], 58) if row.get("description") else ""
    return f"{row['spec']} ({'; '.join(notes)})" + description


def plot_experiment(summary: dict, path: str | Path, title: str = "") -> Path:
    """experiment_figure written as PNG."""
    return save(experiment_figure(summary, title), path)
