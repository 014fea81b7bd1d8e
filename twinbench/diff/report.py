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
        lines.append("no divergence beyond the parity tolerance (common/tolerances.py) in any tensor at any step")
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


def plot_bits(trace: Trace, path: str | Path | None = None) -> bytes:
    """Bits of agreement per tensor over the steps, as PNG bytes (written to `path` if given)."""
    from plots.curves import figure, save
    plt = figure()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    steps = [s["step"] for s in trace.steps]
    for i, name in enumerate(trace.tensors()):
        ax.plot(steps, trace.series(name, "bits"), lw=1, color=f"C{i % 10}", label=name,
                ls="-" if i < 10 else "--")
    ax.set_xlabel("step"), ax.set_ylabel(f"bits of agreement ({trace.dtype})")
    ax.set_ylim(0, MANTISSA_BITS[np.dtype(trace.dtype)] + 1)
    ax.grid(alpha=0.3), ax.legend(fontsize=6, ncol=2, loc="lower left")
    ax.set_title(f"{trace.a.text} vs {trace.b.text}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    if path:
        save(fig, path)
    else:
        plt.close(fig)
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
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}pre{{background:#f6f6f6;padding:.5em;font-size:11px}}
.specs{{display:flex;gap:2em}}img{{max-width:100%}}</style></head><body>
<h1>twinbench diff: {esc(trace.a.text)} vs {esc(trace.b.text)}</h1>
<ul id="summary">{lines}</ul>
<h2>Catalogue entries</h2><ul id="catalogue">{entries or "<li>none: the two sides run the same spec</li>"}</ul>
<h2>Tensors that differ most</h2><div id="table">{table}</div>
<h2>Bits of agreement over the steps</h2>
<img id="plot" alt="bits of agreement per tensor over the steps" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Layer by layer (start weights, first batch)</h2><div id="layers">{localisation}</div>
<h2>The two specs</h2><div class="specs">{specs}</div>
</body></html>
"""


def write_page(trace: Trace, path: str | Path, png: bytes, accuracy: dict | None = None) -> Path:
    href = os.path.relpath(catalogue.DOC, Path(path).resolve().parent).replace(os.sep, "/")
    return write_text(path, page(trace, png, href, accuracy))
