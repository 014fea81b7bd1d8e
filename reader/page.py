"""`twinbench side-by-side --html FILE`: one self-contained page (inline CSS, no scripts,
no network) with a table of contents, each section as an aligned two-column table, the
documented default differences that apply to it and the preset values that drive it.
docs/differences.md, when present, is embedded at the bottom and linked in-page.
"""
from __future__ import annotations

import dataclasses
import html
import os
import re
from pathlib import Path

from common.stack import layer_names
from reader.align import LEGEND, MARKS
from reader.sections import LEFT, RIGHT, TITLES, SectionPair
from reader.terminal import lex_lines

# anchor in docs/differences.md -> (file, pattern found in the section's code on either side)
DIFFERENCE_RULES: dict[str, tuple[str, str]] = {
    "adam-epsilon": ("optimizers.py", r"\bAdam\b|epsilon_convention"),
    "adam-epsilon-placement": ("optimizers.py", r"PaperAdam|epsilon_convention"),
    "rmsprop-epsilon-placement": ("optimizers.py", r"RMSprop|epsilon_placement"),
    "adagrad-epsilon-placement": ("optimizers.py", r"Adagrad|epsilon_placement"),
    "adagrad-initial-accumulator": ("optimizers.py", r"initial_accumulator"),
    "rmsprop-rho": ("optimizers.py", r"\brho\b"),
    "sgd-momentum-lr-change": ("optimizers.py", r"SGD|velocity"),
    "keras-float32-hyperparameters": ("optimizers.py", r"float32"),
    "bn-momentum": ("model.py", r"BatchNorm\w*\(|momentum="),
    "bn-epsilon": ("model.py", r"\beps(ilon)?="),
    "bn-running-variance": ("model.py", r"running_variance|BiasedBatchNorm1d|UnbiasedBatchNormalization"),
    "bn-batch-size-1": ("model.py", r"BatchNorm"),
    "leaky-relu-slope": ("model.py", r"LeakyReLU"),
    "he-normal-truncation": ("model.py", r"truncated|trunc_normal_"),
    "kernel-layout": ("", r"\.T\b|\(in, out\)|\(out, in\)"),
    "cce-clipping": ("losses.py", r"clip_by_value|clamp"),
    "bce-clipping": ("losses.py", r"binary_crossentropy"),
}
# (file, section or "*") -> (part of the spec, pattern of the fields shown)
SPEC_FIELDS: dict[tuple[str, str], tuple[str, str]] = {
    ("model.py", "initializers"): ("network", r"_init$"),
    ("model.py", "layers"): ("network", r"activation|leaky|batch_norm|hidden_units"),
    ("model.py", "build_model"): ("network", r"."),
    ("losses.py", "output_activation"): ("network", r"output_activation"),
    ("losses.py", "*"): ("loss", r"."),
    ("optimizers.py", "*"): ("optimizer", r"."),
    ("training.py", "inputs"): ("training", r"dtype|standardize"),
    ("training.py", "train_step"): ("training", r"batch_size|dtype"),
    ("training.py", "fit"): ("training", r"."),
    ("training.py", "evaluate"): ("training", r"evaluation|validation_split|k_folds"),
}
CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5em 3em; color: #222; }
nav > ul { columns: 3; list-style: none; padding-left: 0; }
nav > ul > li { break-inside: avoid; margin-bottom: .5em; }  /* a file and its sections in one column */
nav li ul { list-style: none; padding-left: 1em; } nav li li { display: inline-block; margin-right: .8em; }
section.pair { margin-top: 2em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; }
table.code { width: 100%; border-collapse: collapse; table-layout: fixed; font: 12px/1.35 monospace; }
table.code th { text-align: left; background: #eef; padding: 3px 6px; font: bold 13px sans-serif; }
table.code td { vertical-align: top; padding: 0 4px; }
col.ln { width: 3.2em; } col.mark { width: 1.4em; }
td.ln { text-align: right; color: #999; user-select: none; }
td.mark { text-align: center; color: #b35900; font-weight: bold; }
td.code { white-space: pre-wrap; overflow-wrap: anywhere; border-left: 1px solid #eee; }
tr.spelling td.code { opacity: .45; }
tr.diff td.code { background: #fff1b8; }
tr.diff td.code.empty { background: repeating-linear-gradient(45deg, #fafafa 0 4px, #eee 4px 8px); }
p.refs a { margin-right: .8em; }
table.spec { border-collapse: collapse; margin: .5em 0; font-size: 12px; }
table.spec th, table.spec td { border: 1px solid #ddd; padding: 1px 6px; text-align: left; }
#differences { margin-top: 3em; border-top: 3px double #999; }
"""


def _code_css() -> str:
    from pygments.formatters import HtmlFormatter
    rules = HtmlFormatter(style="default").get_style_defs(".code").splitlines()
    return "\n".join(r for r in rules if r.startswith(".code ."))


def _token_html(tokens) -> str:
    from pygments.token import STANDARD_TYPES

    out = []
    for ttype, text in tokens:
        while ttype not in STANDARD_TYPES:
            ttype = ttype.parent
        cls = STANDARD_TYPES[ttype]
        out.append(f'<span class="{cls}">{html.escape(text)}</span>' if cls else html.escape(text))
    return "".join(out)


def _table(pair: SectionPair) -> str:
    tokens = {side: iter(lex_lines([t for _, t in s.lines])) if s else iter(())
              for side, s in (("tf", pair.tf), ("pt", pair.pt))}
    head = (f'<tr><th colspan="2" class="tf">{TITLES[LEFT]} &middot; {LEFT}/{pair.file}</th><th></th>'
            f'<th colspan="2" class="pt">{TITLES[RIGHT]} &middot; {RIGHT}/{pair.file}</th></tr>')
    rows = []
    for row in pair.rows:
        cells = []
        for side, line in (("tf", row.tf), ("pt", row.pt)):
            code = _token_html(next(tokens[side])) if line else ""
            cells.append(f'<td class="ln">{line[0] if line else ""}</td>'
                         f'<td class="code {side}{"" if line else " empty"}">{code}</td>')
        rows.append(f'<tr class="{row.kind}">{cells[0]}<td class="mark">{MARKS[row.kind].strip()}</td>'
                    f'{cells[1]}</tr>')
    cols = '<colgroup><col class="ln"><col><col class="mark"><col class="ln"><col></colgroup>'
    return f'<table class="code">{cols}<thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def differences_for(pair: SectionPair) -> list[str]:
    """The docs/differences.md anchors whose default difference shows in this section."""
    if pair.name == "header":
        return []
    text = "\n".join(t for s in (pair.tf, pair.pt) if s for _, t in s.lines)
    return [a for a, (file, pattern) in DIFFERENCE_RULES.items()
            if file in ("", pair.file) and re.search(pattern, text)]


def _flat(obj, prefix: str = "") -> dict[str, str]:
    """Spec fields as dotted name -> text; initializers compact ('uniform(low=-0.1, high=0.1)'); a
    network in the chapter MLP's short form by its fields (hidden_units, ...), another by layer
    (layers.conv2d.filters)."""
    if getattr(obj, "chapter_mlp", None):
        obj = obj.chapter_mlp
    elif hasattr(obj, "layers"):
        names = layer_names(obj)
        return {"input_shape": str(obj.input_shape),
                **{k: v for n, layer in zip(names, obj.layers) for k, v in _flat(layer, f"layers.{n}.").items()}}
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and hasattr(value, "truncated"):
            args = [f"{g.name}={getattr(value, g.name)}" for g in dataclasses.fields(value)
                    if value.name in g.metadata.get("applies", ())]
            out[prefix + f.name] = f"{value.name}({', '.join(args)})" if args else value.name
        elif dataclasses.is_dataclass(value):
            out.update(_flat(value, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = str(value)
    return out


def spec_table(pair: SectionPair, specs: dict[str, object]) -> str:
    """The preset values of the spec fields that drive this section ('' for none)."""
    part, pattern = SPEC_FIELDS.get((pair.file, pair.name)) or SPEC_FIELDS.get((pair.file, "*"), ("", ""))
    if not part or pair.name == "header":
        return ""
    flat = {name: _flat(getattr(spec, part)) for name, spec in specs.items()}
    keys = list(dict.fromkeys(k for values in flat.values() for k in values if re.search(pattern, k)))
    head = "".join(f"<th>{html.escape(n)}</th>" for n in flat)
    body = "".join(f"<tr><th>{part}.{k}</th>" + "".join(f"<td>{html.escape(v.get(k, ''))}</td>"
                                                        for v in flat.values()) + "</tr>" for k in keys)
    return f'<table class="spec"><caption>Preset values</caption><tr><th>field</th>{head}</tr>{body}</table>'


# --- a small Markdown renderer for docs/differences.md (ids prefixed "diff-") ---

def _slug(text: str) -> str:
    return re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", text.strip().lower()))


def _link(match: re.Match) -> str:
    href = match[2].replace('"', "&quot;")
    return f'<a href="{href}">{match[1]}</a>'


def _inline(text: str) -> str:
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for k, part in enumerate(parts):
        if k % 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"\[([^\]]+)\]\(#([^)\s]+)\)", r'<a href="#diff-\2">\1</a>', part)
        part = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", _link, part)
        out.append(part)
    return "".join(out)


def render_markdown(text: str) -> str:
    """Headings (with ids), explicit <a id/name> anchors, fenced code, tables, lists, paragraphs."""
    out, para, lines, used = [], [], iter(text.splitlines()), set()

    def unique(anchor: str) -> str:  # GitHub's rule: a repeated id gets -1, -2, ...
        name = next(f"{anchor}-{k}" if k else anchor for k in range(len(used) + 1)
                    if (f"{anchor}-{k}" if k else anchor) not in used)
        used.add(name)
        return name

    flush = lambda: (out.append(f"<p>{_inline(' '.join(para))}</p>"), para.clear()) if para else None  # noqa: E731
    for line in lines:
        anchor = re.fullmatch(r'\s*<a (?:id|name)="([\w.-]+)">\s*</a>\s*', line)
        heading = re.fullmatch(r"(#{1,6})\s+(.*?)(?:\s*\{#([\w.-]+)\})?\s*#*", line)
        if anchor:
            flush(), out.append(f'<a id="{unique("diff-" + anchor[1])}"></a>')
        elif heading:
            level, hid = min(len(heading[1]) + 1, 6), unique("diff-" + (heading[3] or _slug(heading[2])))
            flush(), out.append(f'<h{level} id="{hid}">{_inline(heading[2])}</h{level}>')
        elif line.startswith("```"):
            code = []
            for inner in lines:
                if inner.startswith("```"):
                    break
                code.append(inner)
            flush(), out.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
        elif line.lstrip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                flush(), out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
        elif re.match(r"\s*([-*]|\d+\.)\s", line):
            item = re.sub(r"^([-*]|\d+\.)\s+", "", line.strip())
            flush(), out.append(f"<li>{_inline(item)}</li>")
        elif line.strip():
            para.append(line.strip())
        else:
            flush()
    flush()
    page = "\n".join(out)
    page = re.sub(r"((?:<tr>.*</tr>\n?)+)", r'<table class="spec">\1</table>', page)
    return re.sub(r"((?:<li>.*</li>\n?)+)", r"<ul>\1</ul>", page)


# --- the page ---

def _ref_links(pair: SectionPair, in_page: set[str], doc_href: str) -> str:
    anchors = differences_for(pair)
    if not anchors:
        return ""
    links = [f'<a href="{"#diff-" + a if "diff-" + a in in_page else f"{doc_href}#{a}"}">{a}</a>'
             for a in anchors]
    return f'<p class="refs">Documented differences: {" ".join(links)}</p>'


def _toc(pairs: list[SectionPair], has_doc: bool) -> str:
    files: dict[str, list[str]] = {}
    for p in pairs:
        files.setdefault(p.file, []).append(f'<li><a href="#{p.id}">{html.escape(p.name)}</a></li>')
    items = "".join(f"<li>{f}<ul>{''.join(v)}</ul></li>" for f, v in files.items())
    doc = '<li><a href="#differences">docs/differences.md</a></li>' if has_doc else ""
    return f'<nav id="toc"><h2>Contents</h2><ul>{items}{doc}</ul></nav>'


def render_html(pairs: list[SectionPair], specs: dict[str, object], differences: str | None,
                doc_href: str = "docs/differences.md") -> str:
    """The whole page. differences: the text of docs/differences.md, or None if absent."""
    doc = render_markdown(differences) if differences is not None else ""
    in_page = set(re.findall(r'id="(diff-[\w.-]+)"', doc))
    body = [f'<section class="pair" id="{p.id}"><h2>{html.escape(p.title)}</h2>'
            f'{_ref_links(p, in_page, doc_href)}{spec_table(p, specs)}{_table(p)}</section>' for p in pairs]
    tail = f'<section id="differences"><h2>docs/differences.md</h2>{doc}</section>' if doc else ""
    legend = html.escape(LEGEND)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>twinbench: TensorFlow and PyTorch side by side</title>"
            f"<style>{CSS}{_code_css()}</style></head><body>"
            f"<h1>twinbench: TensorFlow / Keras 3 and PyTorch side by side</h1><p>{legend}</p>"
            f"{_toc(pairs, bool(doc))}<main>{''.join(body)}{tail}</main></body></html>\n")


def write_html(pairs: list[SectionPair], path: str | Path, root: Path) -> Path:
    """Render the page with the presets and docs/differences.md (if any) and write it atomically."""
    from common.config import load_spec, preset_names
    from common.files import write_text

    doc_path = root / "docs" / "differences.md"
    differences = doc_path.read_text() if doc_path.exists() else None
    doc_href = os.path.relpath(doc_path, Path(path).resolve().parent).replace(os.sep, "/")
    specs = {name: load_spec(name) for name in preset_names()}
    return write_text(path, render_html(pairs, specs, differences, doc_href))
