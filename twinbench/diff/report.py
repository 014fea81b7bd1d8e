"""What `twinbench diff` shows: the terminal table, the catalogue's explanation of a spec
difference, the bits-of-agreement plot and the self-contained HTML page."""
from __future__ import annotations

import base64
import html
import io
import math
import os
from pathlib import Path

import numpy as np
from tabulate import tabulate

from common import catalogue
from common.checkpoint import differences
from common.compare import MANTISSA_BITS
from common.config import to_toml
from common.files import write_text
from twinbench.diff.trace import Trace

LABELS = ("name", "description")  # spec fields that are labels, not math


def explanation(trace: Trace) -> dict:
    """The spec fields in which the two sides differ and the catalogue entries that explain them."""
    fields = [f for f in differences(trace.a.spec, trace.b.spec) if f not in LABELS]
    if trace.a.framework == "reference" or trace.b.framework == "reference":
        fields = [f for f in fields if f != "training.dtype"]
    optimizer = trace.b.spec.optimizer.name if trace.a.spec.optimizer.name == trace.b.spec.optimizer.name else None
    entries = catalogue.entries_for(fields, optimizer)
    covered = {f for f in fields if catalogue.entries_for([f], optimizer)}
    return {"fields": fields, "entries": entries, "uncovered": [f for f in fields if f not in covered],
            "explained": bool(fields) and len(covered) == len(fields)}


def worst_rows(trace: Trace, most: int = 12) -> list[list]:
    """The tensors that differ most (largest ratio to tolerance over the run, then fewest bits)."""
    rows = []
    for name in trace.tensors():
        ratios, bits = trace.series(name, "ratio"), trace.series(name, "bits")
        last = trace.steps[-1]["tensors"][name]
        g = trace.growth(name)
        rows.append([name, last["kind"], last["max_abs"], last["max_rel"], min(bits), last["bits"], max(ratios),
                     "" if g["per_step"] is None else f"x{g['per_step']:.4f}"])
    rows.sort(key=lambda r: (-r[6] if math.isfinite(r[6]) else -math.inf, r[4]))
    return rows[:most]


HEADERS = ["tensor", "kind", "max |diff| (last)", "max rel (last)", "bits (fewest)", "bits (last)",
           "worst / tolerance", "growth per step"]


def summary_lines(trace: Trace, accuracy: dict | None = None) -> list[str]:
    """The verdict lines printed above the table."""
    n, p = len(trace.steps), MANTISSA_BITS[np.dtype(trace.dtype)]
    lines = [f"{trace.a.text} vs {trace.b.text}: {n} steps, compared in {trace.dtype} ({p} bits = equal)"]
    fewest = min((min(trace.series(t, "bits")) for t in trace.tensors()), default=p)
    lines.append(f"fewest bits of agreement over all tensors and steps: {fewest:.1f} of {p}")
    if trace.first:
        f = trace.first
        lines.append(f"first divergence beyond the parity tolerance: step {f['step']}, {f['tensor']} ({f['kind']}): "
                     f"max rel {f['max_rel']:.3g}, {f['bits']:.1f} bits, {f['ratio']:.3g}x the tolerance")
    else:
        lines.append(f"no divergence beyond the parity tolerance ({TOLERANCES_DOC}) in any tensor at any step")
    layers = trace.layers or {}
    fwd, bwd = layers.get("forward"), layers.get("backward")
    lines.append("layer by layer on the same inputs: " + (
        "every layer agrees, forward and backward" if not fwd and not bwd else
        f"first forward difference in layer '{fwd or '-'}', first backward difference in layer '{bwd or '-'}'"))
    ex = explanation(trace)
    if ex["fields"]:
        lines.append(f"the specs differ in {', '.join(ex['fields'])}: " + (
            f"explained by the catalogue entries {', '.join(ex['entries'])} (docs/differences.md)" if ex["explained"]
            else f"not all in the catalogue ({', '.join(ex['uncovered'])} is not)"
            + (f"; see {', '.join(ex['entries'])}" if ex["entries"] else "")))
    if accuracy:
        lines.append(accuracy_line(trace, accuracy))
    return lines


def accuracy_line(trace: Trace, accuracy: dict) -> str:
    a, b = accuracy[trace.a.text], accuracy[trace.b.text]
    return (f"final test accuracy after {accuracy['epochs']} epochs (fast variants): {trace.a.text} {a:.4f}, "
            f"{trace.b.text} {b:.4f}, difference {a - b:+.4f} ({100 * (a - b):+.2f} points)")


def terminal(trace: Trace, accuracy: dict | None = None) -> str:
    table = tabulate(worst_rows(trace), headers=HEADERS, floatfmt=".3g", disable_numparse=False)
    return "\n".join(summary_lines(trace, accuracy)) + "\n\n" + table


TOLERANCES_DOC = "docs/guide.md, 'How close is equal'"
PLOTTED = 6  # tensors drawn one by one; the rest as one grey range (19 lines were unreadable)


def bits_figure(trace: Trace, most: int = PLOTTED):
    """Two panels over the steps for the tensors that differ most (worst_rows' order), each
    labelled, and the range of all the others in grey: the bits of agreement, and the
    difference as a multiple of its parity tolerance with the tolerance itself as the line at 1
    (above it: beyond tolerance, as the table says), exact matches on the axis's floor ("0:
    equal") rather than missing; the first divergence is marked on both. The tolerance is a line
    only there: in bits it differs by tensor kind and magnitude."""
    from plots.style import figure, identical_to, integer_axis, legend_outside, wrap
    steps = [s["step"] for s in trace.steps]
    names = [r[0] for r in worst_rows(trace, most)]
    rest = [n for n in trace.tensors() if n not in names]
    fig, (top, bottom) = figure().subplots(2, 1, figsize=(10, 6.5), sharex=True, layout="constrained")
    p = MANTISSA_BITS[np.dtype(trace.dtype)]
    same = identical_to({n: trace.series(n, "bits") + trace.series(n, "ratio") for n in names})
    floor = _ratio_floor(trace)
    for i, name in enumerate(names):
        label = name + (f" (identical to {same[name]})" if name in same else "")
        style = {"color": f"C{i}", "lw": 2.4 if name in same.values() else 1.2, "label": label,
                 "marker": "o" if len(steps) <= 60 else None, "ms": 3}
        top.plot(steps, trace.series(name, "bits"), **style)
        bottom.plot(steps, _floored(trace.series(name, "ratio"), floor), **style)
    if rest:
        _others(top, bottom, trace, rest, steps, floor)
    top.set_ylim(_bits_floor(trace), p + 0.5), top.set_ylabel(f"bits of agreement\n({trace.dtype}: {p} = equal)")
    bottom.set_yscale("log"), bottom.set_ylabel("worst |difference| / tolerance")
    bottom.axhline(1, color="k", lw=1.5, ls="--", label="parity tolerance")
    _ratio_limits(bottom, floor)
    if trace.first:
        for ax in (top, bottom):
            ax.axvline(trace.first["step"], color="C3", lw=1.2, ls=":",
                       label=f"first divergence: step {trace.first['step']}, {trace.first['tensor']}" if ax is top else None)
    bottom.set_xlabel("step")
    integer_axis(bottom, steps)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    legend_outside(fig, (top, bottom), ncol=3)
    same_spec = trace.a.spec.description == trace.b.spec.description
    title = f"{trace.a.text} vs {trace.b.text}, {len(steps)} step{'s' if len(steps) != 1 else ''}" + (
        f"\n{trace.a.spec.description}" if same_spec and trace.a.spec.description else "")
    fig.suptitle(wrap(title, 130), fontsize=10)
    return fig


def _others(top, bottom, trace: Trace, rest: list[str], steps: list[int], floor: float) -> None:
    """The tensors not drawn one by one, as the range they span at each step."""
    for ax, key in ((top, "bits"), (bottom, "ratio")):
        values = np.array([_floored(trace.series(n, key), floor) if key == "ratio" else trace.series(n, key)
                           for n in rest], dtype=float)
        low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        ax.fill_between(steps, low, high, color="0.6", alpha=0.35, lw=0, label=f"the other {len(rest)} tensors (range)")
        if len(steps) == 1:  # a range at one step has no width: a bar shows it
            ax.vlines(steps, low, high, color="0.6", lw=6, alpha=0.5)


def _bits_floor(trace: Trace) -> float:
    """The bits axis starts a little under the fewest bits of any tensor (0 when some tensor
    lost them all), so that lines 2 bits apart do not merge at the top of a 0-to-p axis."""
    fewest = min((min(trace.series(n, "bits")) for n in trace.tensors()), default=0.0)
    return max(0.0, math.floor(fewest) - 2.0)


def _ratio_floor(trace: Trace) -> float:
    """Where an exact match (ratio 0) sits on the log axis: a decade under the smallest nonzero
    ratio of any tensor, and at most 1e-3 of the tolerance."""
    nonzero = [v for n in trace.tensors() for v in trace.series(n, "ratio") if v > 0]
    return min(min(nonzero, default=1.0) / 10, 1e-3)


def _floored(values: list[float], floor: float) -> list[float]:
    """Ratios for a log axis: an exact match (0) drawn on the floor, not left out as a gap."""
    return [max(v, floor) for v in values]


def _ratio_limits(ax, floor: float) -> None:
    """The log axis spans the floor (labelled "0: equal"), the data and the tolerance line, at
    least a decade over it."""
    from matplotlib.ticker import FuncFormatter, LogLocator
    high = ax.get_ylim()[1]
    ax.set_ylim(floor / 1.5, max(high, 10.0))
    ax.yaxis.set_major_locator(LogLocator(numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "0: equal" if math.isclose(v, floor, rel_tol=0.2)
                                               else f"{v:g}"))
    ax.set_yticks(sorted({floor, *[t for t in ax.get_yticks() if t > floor * 3]}))
    ax.set_ylim(floor / 1.5, max(high, 10.0))


def plot_bits(trace: Trace, path: str | Path | None = None) -> bytes:
    """bits_figure as PNG bytes (written to `path` if given)."""
    from plots.style import DPI, figure, save
    fig = bits_figure(trace)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    if path:
        save(fig, path)
    else:
        figure().close(fig)
    return buf.getvalue()


def page(trace: Trace, png: bytes, doc_href: str, accuracy: dict | None = None) -> str:
    """One self-contained HTML page (inline CSS, the plot embedded, no scripts, no network)."""
    esc = html.escape
    ex = explanation(trace)
    entries = "".join(
        f'<li><a href="{esc(doc_href)}#{e}">{esc(e)}</a>: <b>{esc(catalogue.ENTRIES[e][0])}.</b> '
        f"{esc(catalogue.ENTRIES[e][1])} <i>Keras:</i> {esc(catalogue.ENTRIES[e][2])}; <i>PyTorch:</i> "
        f"{esc(catalogue.ENTRIES[e][3])}</li>" for e in ex["entries"])
    localisation = tabulate([[r["direction"], r["layer"], r["what"], r["max_rel"], r["bits"], r["ratio"]]
                             for r in (trace.layers or {}).get("rows", [])],
                            headers=["pass", "layer", "compared", "max rel", "bits", "ratio to tolerance"],
                            tablefmt="html", floatfmt=".3g")
    specs = "".join(f"<div><h3>{esc(s.text)}</h3><pre>{esc(to_toml(s.spec))}</pre></div>" for s in (trace.a, trace.b))
    lines = "".join(f"<li>{esc(line)}</li>" for line in summary_lines(trace, accuracy))
    table = tabulate(worst_rows(trace, 50), headers=HEADERS, tablefmt="html", floatfmt=".3g")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>twinbench diff: {esc(trace.a.text)} vs {esc(trace.b.text)}</title>
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}
pre{{background:#f6f6f6;padding:.5em;font-size:11px;white-space:pre-wrap;overflow-wrap:anywhere}}
.specs{{display:flex;flex-wrap:wrap;gap:2em}}.specs>div{{flex:1 1 30em;min-width:0}}img{{max-width:100%}}</style>
</head><body>
<h1>twinbench diff: {esc(trace.a.text)} vs {esc(trace.b.text)}</h1>
<ul id="summary">{lines}</ul>
<h2>Catalogue entries</h2><ul id="catalogue">{entries or "<li>none: the two sides run the same spec</li>"}</ul>
<h2>Tensors that differ most</h2><div id="table">{table}</div>
<h2>Bits of agreement and difference to tolerance over the steps</h2>
<img id="plot" alt="bits of agreement, and difference as a multiple of the tolerance, of the tensors that differ most, over the steps" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Layer by layer (start weights, first batch)</h2><div id="layers">{localisation}</div>
<h2>The two specs</h2><div class="specs">{specs}</div>
</body></html>
"""


def write_page(trace: Trace, path: str | Path, png: bytes, accuracy: dict | None = None) -> Path:
    href = os.path.relpath(catalogue.DOC, Path(path).resolve().parent).replace(os.sep, "/")
    return write_text(path, page(trace, png, href, accuracy))
