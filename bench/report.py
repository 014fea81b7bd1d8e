"""The run's report: the table (terminal and Markdown), latest.json, the PNGs, and
`--compare OLD.json NEW.json`."""
from __future__ import annotations

import datetime
import json
import textwrap
from pathlib import Path

from tabulate import tabulate

import frameworks
from bench.matrix import COLD_FIRST_EPOCH, WARM_OVER_STEADY, all_rows
from bench.results import load_rows, table_rows
from common.config import load_spec
from common.files import write_json, write_text
from common.text import signed

# the terminal's table (under 100 columns) and latest.md's, every column: key -> header
TERMINAL = {"row": "row", "tier": "tier", "median": "s/epoch", "x_floor": "x floor", "x_jax": "x JAX",
            "test_accuracy": "test acc", "trained": "epochs × n", "checked": "checked"}
WIDE = {"row": "row", "tier": "tier", "median": "median s/epoch", "min": "min", "max": "max", "iqr": "IQR",
        "x_floor": "x floor (C, no framework)", "x_jax": "x JAX (peer)", "time_to_first_epoch": "time to 1st epoch",
        "cold_start": "1st epoch, new process, cold", "warm_start": "1st epoch, new process, warm",
        "eval_seconds": "eval s", "test_accuracy": "test acc", "trained": "epochs × examples", "target": "target s",
        "met": "met", "floor_target": "target x floor", "floor_met": "met x floor",
        "startup_met": f"start-up: warm <= steady + {WARM_OVER_STEADY:g} s, "
                       + ", ".join(f"{fw} {dev} cold <= {limit:g} s" for (fw, dev), limit in COLD_FIRST_EPOCH.items()),
        "checked": "checked", "threads": "threads", "optimizer": "optimizer", "note": "note"}
LEGEND = ("× floor, × JAX: the row's seconds over the C floor's (the same training in C, no framework)\n"
          "and over the JAX peer's; checked: its checks against the float64 reference and the floor passed\n"
          "(bench/README.md)")
SLOWER, FASTER = 1.05, 0.95


def _cell(key: str, v):
    if v is None:
        return "—"
    if key == "test_accuracy":
        return f"{v:.4f}"
    if key in ("x_floor", "x_jax", "floor_target"):
        return f"{v:.1f}x" if v >= 9.95 or key == "floor_target" else f"{v:.2f}x"
    return f"{v:.3g}" if isinstance(v, float) else v


def render(rows: list[dict], fmt: str = "simple", columns: dict | None = None) -> str:
    columns = columns or TERMINAL
    return tabulate([[_cell(k, r.get(k)) for k in columns] for r in rows], headers=list(columns.values()),
                    tablefmt=fmt, disable_numparse=True)


def notes(rows: list[dict]) -> list[str]:
    """The rows' remarks, one line each (the terminal table has no room for them)."""
    return [f"{r['row']}: {r['note']}" for r in rows if r.get("note")]


def study_text(study: dict) -> str:
    """The accuracy study's verdict in words."""
    st = study["stats"]
    seeds = ", ".join(map(str, study["seeds"]))
    a, b = (fw for fw in study["frameworks"])
    how = st.get("tost_method") or ("paired t-tests" if st.get("paired") else "Welch t-tests")
    return (f"{study['preset']}, {study['epochs']} epochs, seeds {seeds} (each seed: the same start and order in "
            f"both): mean difference {a} - {b} {signed(st['difference'])}; equivalence within ±{st['margin']} "
            f"(TOST, {how}): p = {st['tost_p']:.3g}, "
            f"{'equivalent' if st['equivalent'] else 'equivalence not shown'} at alpha {st['alpha']}")


def render_accuracy(study: dict | None, fmt: str = "simple") -> str:
    """The accuracy-over-seeds table and its test, or '' without a study."""
    if not study or not study.get("frameworks"):
        return ""
    lines = []
    for fw, s in study["frameworks"].items():
        accs = s.get("accuracies") or []
        lines.append([fw, s.get("variant", "—"), s.get("row", "—"), len(accs),
                      f"{s['mean']:.4f} ± {s['std']:.4f}" if accs else s.get("reason", "—")])
    text = tabulate(lines, headers=["framework", "variant", "from row", "seeds", "test acc (mean ± std)"],
                    tablefmt=fmt, disable_numparse=True)
    if not study.get("stats"):  # one framework, or one seed: nothing to compare
        return text
    said = textwrap.fill(study_text(study), 99, break_long_words=False) if fmt == "simple" else study_text(study)
    return f"{text}\n\n{said}"


def environment_lines(env: dict, settings: dict | None) -> list[str]:
    """What the numbers were measured on and under: date, commit, CPU, versions, thread policy."""
    from common.environment import cpu_line
    info = env.get("cpu_info")
    versions = [f"{fw} {env[fw]['version']}" + (f" / Keras {env[fw]['keras']}" if env[fw].get("keras") else "")
                for fw in frameworks.NAMES if isinstance(env.get(fw), dict) and env[fw].get("version")]
    compilers = env.get("compilers") or {}
    quick = [f"quick run: conf1 rows (floor and JAX included) train on the first {settings['quick_examples']:,} of "
             f"60,000 images per epoch, seconds scaled to 60,000; their test accuracy is after "
             f"{settings['rounds'] + 1} such epochs, lower than a full run's"] if (settings or {}).get("quick") else []
    return [f"{str(env.get('date', ''))[:10]} · commit {env.get('git_commit', 'unknown')}",
            f"CPU: {cpu_line(info) if info else env.get('cpu', '?')}",
            "versions: " + ", ".join([f"Python {env.get('python', '?')}", *versions,
                                      *(f"{k} {v}" for k, v in compilers.items())]),
            f"threads: {(settings or {}).get('policy') or 'as recorded in each row'}", *quick]


def epoch_times_figure(rows: list[dict], title: str = ""):
    """Horizontal bars of the median s/epoch on a log axis labelled at 1-2-5 steps, each bar's
    value written beside it (the fast rows sit within one decade), min-max whiskers, targets
    as dashed ticks, a key for the colours."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator

    from plots.style import figure, legend_outside
    rows = [r for r in rows if r["median"]]
    fig, ax = figure().subplots(figsize=(9, 0.45 * len(rows) + 2.2), layout="constrained")
    y = range(len(rows))
    ax.barh(y, [r["median"] for r in rows], color=[_colour(r["row"]) for r in rows],
            xerr=[[r["median"] - r["min"] for r in rows], [r["max"] - r["median"] for r in rows]], capsize=3)
    for i, r in enumerate(rows):
        ax.text(max(r["max"], r["target"] or 0) * 1.06, i, f"{r['median']:.3g} s", va="center", fontsize=8)  # clear of
        # the target's tick
        if r["target"]:
            ax.plot([r["target"]] * 2, [i - 0.4, i + 0.4], "k--", lw=1)
    ax.set_yticks(list(y), [r["row"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(r["min"] for r in rows) / 1.5, max(max(r["max"], r["target"] or 0) for r in rows) * 2.2)  # room
    # for the values
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("seconds per epoch (log scale)")
    ax.grid(axis="x", which="major", alpha=0.4)
    present = {_family(r["row"]) for r in rows}
    key = [Patch(color=_colour(f), label=label) for f, label in FAMILIES if f in present]
    key += [Line2D([], [], color="k", marker="|", ls="", ms=8, label="min-max over the rounds")]
    key += [Line2D([], [], color="k", ls="--", lw=1, label="target")] if any(r["target"] for r in rows) else []
    legend_outside(fig, key=key, ncol=len(key))
    ax.set_title(title, fontsize=10)
    return fig


# the rows' families in the key's order: (row prefix, label)
FAMILIES = (("floor", "floor (C, no framework)"), ("jax", "JAX (peer)"), ("tf", "TensorFlow / Keras"),
            ("torch", "PyTorch"))
_COLOURS = {"floor": "C2", "jax": "C4"}


def _family(row_id: str) -> str:
    return row_id.split("-")[0]


def _colour(row_or_family: str) -> str:
    family = _family(row_or_family)
    return _COLOURS.get(family) or f"C{frameworks.NAMES.index(family)}"


def epoch_times_title(env: dict, settings: dict | None) -> str:
    """What the chart measured: per-epoch median over the rounds, the machine, date and commit."""
    from common.environment import cpu_line
    rounds = (settings or {}).get("rounds")
    cpu = cpu_line(env["cpu_info"]) if env.get("cpu_info") else env.get("cpu")
    when = " · ".join(x for x in (str(env.get("date", ""))[:10],
                                  f"commit {env['git_commit'][:7]}" if env.get("git_commit") else "") if x)
    head = ("Seconds per epoch" + (f", median of {rounds} timed epochs" if rounds and rounds > 1 else
                                   ", one timed epoch" if rounds == 1 else ", median"))
    if (settings or {}).get("quick"):
        head += f" (quick: conf1 on {settings['quick_examples']:,} of 60,000 images, scaled to 60,000)"
    return head + "".join(f"\n{x}" for x in (cpu, when) if x)


def plot_epoch_times(rows: list[dict], path: Path, title: str = "") -> Path:
    """epoch_times_figure written as PNG."""
    from plots.style import save
    return save(epoch_times_figure(rows, title), path)


def plot_learning_curves(records: dict, study: dict | None, path: Path) -> bool:
    """Learning curves: the seeds study's first seed per framework, else the conf5 rows."""
    from plots import plot_curves
    from plots.style import spec_title
    hist = {}
    if study:
        for fw, s in study.get("frameworks", {}).items():
            if s.get("histories"):
                hist[f"{fw} {s['variant']} seed {study['seeds'][0]}"] = s["histories"][0]
    if not hist:
        for r in records.values():
            if r.get("status") == "ok" and r.get("preset") == "conf5" and r.get("history"):
                hist[r["id"]] = r["history"]
    if hist:
        plot_curves(hist, path, title=f"{spec_title(load_spec('conf5'))}\n'eval' is the test set")
    return bool(hist)


def write_figures(out: str | Path, rows: list[dict], records: dict, study: dict | None, env: dict,
                  settings: dict | None) -> list[Path]:
    """epoch_times.png and learning_curves.png, where there is something to draw; the files written."""
    out, written = Path(out), []
    if any(r["median"] for r in rows):
        written.append(plot_epoch_times(rows, out / "epoch_times.png", epoch_times_title(env, settings)))
    if plot_learning_curves(records, study, out / "learning_curves.png"):
        written.append(out / "learning_curves.png")
    return written


def redraw(out: str | Path) -> None:
    """The figures again from a results folder's latest.json, rows and accuracy.json, without
    measuring anything (after a change to the figures)."""
    out = Path(out)
    latest = json.loads((out / "latest.json").read_text())
    study_path = out / "accuracy.json"
    study = json.loads(study_path.read_text()) if study_path.exists() else None
    write_figures(out, latest["rows"], load_rows(out), study, latest.get("environment") or {}, latest.get("settings"))


def write_report(out: str | Path, settings: dict | None = None) -> tuple[str, list[Path]]:
    """The run's report: latest.json, latest.md (every column) and the PNGs there is something
    to draw; returns (the terminal's text: the table under 100 columns, the rows' notes, the
    study; the files written)."""
    out = Path(out)
    records = load_rows(out)
    order = [r.id for r in all_rows()]
    rows = table_rows(records, order)
    study_path = out / "accuracy.json"
    study = json.loads(study_path.read_text()) if study_path.exists() else None
    env = next((r["environment"] for r in records.values() if r.get("environment")), {})
    head = environment_lines(env, settings)
    wrapped = [textwrap.fill(line, 99, subsequent_indent="  ", break_long_words=False) for line in head]
    write_json(out / "latest.json", {"generated": datetime.datetime.now().isoformat(timespec="seconds"),
                                     "settings": settings, "environment": env, "rows": rows,
                                     "accuracy": {k: v for k, v in (study or {}).items() if k != "runs"}})
    md = ["# twinbench benchmark", "", *(f"{line}  " for line in head), "", render(rows, "github", WIDE), ""]
    acc = render_accuracy(study, "github")
    md += ["## Accuracy over seeds", "", acc, ""] if acc else []
    write_text(out / "latest.md", "\n".join(md))
    written = [out / "latest.json", out / "latest.md", *write_figures(out, rows, records, study, env, settings)]
    said = notes(rows)
    text = "\n".join([*wrapped, "", render(rows), LEGEND] + (["", "notes:", *(f"  {n}" for n in said)] if said else []))
    acc = render_accuracy(study)
    return text + ("\n\n" + acc if acc else ""), written


def compare(old_path: str | Path, new_path: str | Path) -> str:
    """Rows of two latest.json files: old and new median, new/old, faster/slower beyond 5%."""
    old, new = (json.loads(Path(p).read_text()) for p in (old_path, new_path))
    old_rows = {r["row"]: r for r in old.get("rows", [])}
    lines = []
    for r in new.get("rows", []):
        o = old_rows.get(r["row"], {})
        a, b = o.get("median"), r.get("median")
        ratio = b / a if a and b else None
        word = "—" if ratio is None else "slower" if ratio > SLOWER else "faster" if ratio < FASTER else "same"
        lines.append([r["row"], _cell("median", a), _cell("median", b),
                      f"{ratio:.2f}" if ratio else "—", word])
    lines += [[rid, _cell("median", o.get("median")), "—", "—", "only in old"]
              for rid, o in old_rows.items() if rid not in {r["row"] for r in new.get("rows", [])}]
    return tabulate(lines, headers=["row", "old s/epoch", "new s/epoch", "new/old", "verdict"],
                    disable_numparse=True)


README_ROWS = ("floor", "jax", "tf-book", "torch-book", "tf-fast", "torch-fast")  # per preset, in this order


def readme_table(latest: dict) -> str:
    """The README's results table, made from a results folder's latest.json (a test checks that
    the README holds exactly this): one line per CPU row, each preset's rows together."""
    rows = {r["row"]: r for r in latest.get("rows", []) if r["row"].endswith("-cpu") and r.get("median")}
    lines = ["| row | tier | s/epoch | new process, cold / warm | test acc | epochs × examples | × floor | × JAX |",
             "|---|---|---|---|---|---|---|---|"]
    for preset in ("conf1", "conf5"):
        for kind in README_ROWS:
            rid = next((i for i in rows if i.startswith(f"{kind}-") and f"-{preset}-" in i), None)
            if rid is None:
                continue
            r = rows[rid]
            starts = f"{r['cold_start']:.2f} / {r['warm_start']:.2f}" if r.get("cold_start") else ""
            lines.append(f"| {rid.removesuffix('-cpu')} | {r.get('tier') or ''} | {r['median']:.3g} | {starts} | "
                         f"{r['test_accuracy']:.4f} | {r.get('trained') or ''} | "
                         f"{_cell('x_floor', r['x_floor']) if r.get('x_floor') else ''} | "
                         f"{_cell('x_jax', r['x_jax']) if r.get('x_jax') else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m bench.report FOLDER: the README's table of that folder's latest.json
    import sys
    print(readme_table(json.loads((Path(sys.argv[1]) / "latest.json").read_text())))
