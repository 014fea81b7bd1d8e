"""What every twinbench figure shares: pyplot on Agg, atomic PNG writing, integer step and
epoch axes, one legend outside the data, wrapped titles, and series that coincide drawn so
that both stay visible and are named identical."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Iterable, Sequence

from common.files import atomic_write

# Two series whose values agree to this relative difference are drawn as one curve at any
# size a PNG has (a pixel is ~1e-3 of an axis), so the legend names them identical.
IDENTICAL_RTOL = 1e-6
DPI = 100


def figure():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path: str | Path) -> Path:
    """Write the figure as PNG atomically and close it."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    figure().close(fig)
    return Path(path)


def run_style(i: int, marker: str) -> dict:
    """Line and marker keywords of the i-th run, colour Ci. The first run has the widest line
    and the largest open marker, so that a later run drawn on top of the same values leaves
    it visible as a halo around its own."""
    return {"color": f"C{i % 10}", "marker": marker, "lw": max(2.6 - 1.4 * i, 1.2),
            "ms": max(8 - 2.5 * i, 4), "mfc": "none" if i == 0 else f"C{i % 10}", "mew": 1.2,
            "zorder": 2 + i}


def integer_axis(ax, values: Iterable[float]) -> None:
    """Ticks at whole epochs (or steps) only, with half a unit of room at both ends, so that a
    single epoch is a point in the middle of the axis rather than on its frame."""
    from matplotlib.ticker import MaxNLocator
    whole = sorted({int(v) for v in values if v is not None and math.isfinite(v)})
    if whole:
        ax.set_xlim(whole[0] - 0.5, whole[-1] + 0.5)
    # min_n_ticks=1: with the default 2 the locator gives up on integers over a 1-epoch span
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def same_values(a: Sequence[float], b: Sequence[float], rtol: float = IDENTICAL_RTOL) -> bool:
    """Equal length and every pair within rtol (NaN matches NaN: two runs that diverged alike)."""
    if len(a) != len(b) or not a:
        return False
    return all((math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=rtol, abs_tol=rtol * 1e-3)
               for x, y in zip(map(float, a), map(float, b)))


def identical_to(series: dict[str, Sequence[float]]) -> dict[str, str]:
    """label -> the label of an earlier series with the same values, for each series that repeats one."""
    labels = list(series)
    return {later: next(earlier for earlier in labels[:k] if same_values(series[earlier], series[later]))
            for k, later in enumerate(labels) if any(same_values(series[e], series[later]) for e in labels[:k])}


def legend_outside(fig, axes=(), ncol: int | None = None, key: Sequence = ()):
    """One legend for the whole figure, under every panel (the figure needs a constrained
    layout): the labelled artists of `axes` (a label that several panels draw appears once),
    then the proxy artists of `key`."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    for handle in key:
        handles.setdefault(handle.get_label(), handle)
    if not handles:
        return None
    return fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                      ncol=ncol or min(len(handles), 4), fontsize=8, frameon=False)


def wrap(text: str, width: int) -> str:
    """A title broken into lines of at most `width` characters (long descriptions); its own
    line breaks kept."""
    return "\n".join("\n".join(textwrap.wrap(line, width)) for line in text.splitlines())


def spec_title(spec) -> str:
    """'conf5: ReLU + he_normal hidden / ...': the spec's name and description."""
    from common.config import describe
    return f"{spec.name}: {spec.description or describe(spec)}"
