"""The experiment's results: per spec and framework the final test accuracy over seeds, the
paired difference between the frameworks with its 95% interval and TOST equivalence, the
defaults arm against the mapped one, k-fold validation accuracy, and the chapter's printout."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from tabulate import tabulate

import frameworks
from common.stats import compare_samples

MARGIN = 0.005  # TOST margin: +-0.5 percentage points of test accuracy
ALPHA = 0.05
# The chapter's conf1 printout (TensorFlow, Keras fit): test accuracy after epochs 1-6, train accuracy after 1
CHAPTER = {"conf1": {"framework": "tf", "test_accuracy": [0.8893, 0.9132, 0.9249, 0.9307, 0.9309, 0.9329],
                     "train_accuracy_epoch1": 0.6624}}


def load_records(out: str | Path) -> list[dict]:
    records = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


def _final(record: dict) -> float | None:
    history = record.get("history") or []
    return history[-1].get("val_accuracy") if history and record.get("status") == "complete" else None


def groups(records: list[dict]) -> dict:
    """(arm, spec, framework) -> {seed or (seed, fold): record}."""
    out: dict = defaultdict(dict)
    for r in records:
        out[(r["arm"], r["spec"], r["framework"])][r["seed"] if r.get("fold") is None else (r["seed"], r["fold"])] = r
    return out


def band(runs: dict, key: str = "val_accuracy") -> dict:
    """Per epoch over the seeds: mean, min, max (complete runs only)."""
    curves = [[row[key] for row in r["history"]] for r in runs.values() if r.get("status") == "complete"]
    if not curves:
        return {"epochs": [], "mean": [], "min": [], "max": [], "n": 0}
    width = min(len(c) for c in curves)
    a = np.array([c[:width] for c in curves], dtype=float)
    return {"epochs": list(range(1, width + 1)), "mean": a.mean(0).tolist(), "min": a.min(0).tolist(),
            "max": a.max(0).tolist(), "n": len(curves)}


def chapter_check(label: str, bands: dict, train_bands: dict | None = None) -> dict | None:
    """Whether the chapter's printed test accuracies lie inside each framework's seed band."""
    ref = CHAPTER.get(label)
    if not ref:
        return None
    out = {"printed": ref}
    for fw, b in bands.items():
        inside = [b["min"][e] <= v <= b["max"][e] for e, v in enumerate(ref["test_accuracy"]) if e < len(b["min"])]
        out[fw] = {"inside": sum(inside), "of": len(inside), "per_epoch": inside}
        train = train_bands.get(fw) if train_bands else None
        if train and train["min"]:
            out[fw]["train_accuracy_epoch1"] = {"min": train["min"][0], "max": train["max"][0],
                                                "inside": train["min"][0] <= ref["train_accuracy_epoch1"] <= train["max"][0]}
    return out


def _spec_field(g: dict, label: str, names, read) -> str:
    """read(the spec as the mapped runs recorded it), or '' when no run recorded one."""
    return next((read(r["settings"]["spec"]) for fw in names for r in g.get(("mapped", label, fw), {}).values()
                 if r.get("settings", {}).get("spec")), "")


def _description(g: dict, label: str, names) -> str:
    """The spec's description as its mapped runs recorded it ('' when no run has it)."""
    return _spec_field(g, label, names, lambda s: s.get("description") or "")


def summarize(records: list[dict], specs: list[str]) -> dict:
    """Everything the table and the figure show."""
    g = groups(records)
    names = frameworks.NAMES
    rows = []
    for label in specs:
        row = {"spec": label, "description": _description(g, label, names), "frameworks": {}, "defaults": {},
               "kfold": {}, "optimizers": {},
               "evaluation": _spec_field(g, label, names, lambda s: s.get("training", {}).get("evaluation", "test"))}
        finals = {}
        for fw in names:
            runs = g.get(("mapped", label, fw), {})
            finals[fw] = {s: v for s, r in runs.items() if (v := _final(r)) is not None}
            accs = list(finals[fw].values())
            row["optimizers"][fw] = next((r["optimizer"] for r in runs.values() if r.get("optimizer")), None)
            row["frameworks"][fw] = {"n": len(accs), "failed": sum(r.get("status") != "complete" for r in runs.values()),
                                     "mean": float(np.mean(accs)) if accs else None,
                                     "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
                                     "band": band(runs)}
            own = g.get(("defaults", label, fw), {})
            if own:
                mine = {s: v for s, r in own.items() if (v := _final(r)) is not None}
                paired = sorted(set(mine) & set(finals[fw]))
                row["defaults"][fw] = {"n": len(mine), "mean": float(np.mean(list(mine.values()))) if mine else None,
                                       "minus_mapped": float(np.mean([mine[s] - finals[fw][s] for s in paired]))
                                       if paired else None, "band": band(own)}
            folds = g.get(("kfold", label, fw), {})
            if folds:
                accs = [v for r in folds.values() if (v := _final(r)) is not None]
                row["kfold"][fw] = {"folds": len(accs), "mean": float(np.mean(accs)) if accs else None,
                                    "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else None}
        paired = sorted(set(finals[names[0]]) & set(finals[names[1]]))
        if len(paired) >= 2:
            a, b = ([finals[fw][s] for s in paired] for fw in names)
            row["comparison"] = compare_samples(a, b, MARGIN, ALPHA, paired=True)
        row["chapter"] = chapter_check(label, {fw: row["frameworks"][fw]["band"] for fw in names},
                                       {fw: band(g.get(("mapped", label, fw), {}), "accuracy") for fw in names})
        rows.append(row)
    return {"margin": MARGIN, "alpha": ALPHA, "frameworks": list(names), "specs": rows}


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.2f}"


def _points(v: float) -> str:
    """A difference of accuracies in percentage points, signed, never -0.00."""
    text = f"{100 * v:+.2f}"
    return "0.00" if float(text) == 0 else text


def table(summary: dict, fmt: str = "github") -> str:
    """The summary table: accuracies in percent, mean ± std over seeds."""
    a, b = summary["frameworks"]
    lines = []
    for r in summary["specs"]:
        fa, fb = r["frameworks"][a], r["frameworks"][b]
        c = r.get("comparison")
        diff = "—" if not c else (f"{_points(c['difference'])} [{_points(c['interval']['low'])}, "
                                  f"{_points(c['interval']['high'])}]")
        verdict = "—" if not c else ("yes" if c["equivalent"] else "not shown")
        dflt = "; ".join(f"{fw} {_points(d['minus_mapped'])}" for fw, d in r["defaults"].items()
                         if d.get("minus_mapped") is not None) or "same as mapped"
        ch = r.get("chapter")
        chapter = "—" if not ch else ", ".join(f"{fw}: {ch[fw]['inside']} of {ch[fw]['of']}" for fw in (a, b))
        lines.append([r["spec"], f"{_pct(fa['mean'])} ± {_pct(fa['std'])} (n={fa['n']})",
                      f"{_pct(fb['mean'])} ± {_pct(fb['std'])} (n={fb['n']})", diff,
                      "—" if not c else f"{c['tost_p']:.3g}", verdict, dflt, chapter])
    headers = ["spec", f"{a} test acc %", f"{b} test acc %", f"{a} − {b} (points, 95% interval)",
               f"p, equal within ±{100 * summary['margin']:.1f} points", "equivalent",
               "each framework's own defaults − the spec (points)",
               "epochs 1-6 where the book's printed accuracy lies in this run's seed range"]
    text = tabulate(lines, headers=headers, tablefmt=fmt, disable_numparse=True)
    text += ("\n\nThe frameworks are called equivalent on a spec when the mean of the paired differences (seed by seed: the "
             f"same start and order in both) lies within ±{100 * summary['margin']:.1f} points with 95% confidence "
             "(two one-sided tests, TOST; the p column is theirs).")
    held = [r["spec"] for r in summary["specs"] if r.get("evaluation") == "validation_split"]
    if held:
        text += (f" For {', '.join(held)} the accuracy is on the images held out of its training set"
                 " (training.evaluation = validation_split, as its source reports), not the 10,000 test images.")
    ran = [[r["spec"], *(r.get("optimizers", {}).get(fw) or "not recorded (a run of twinbench before 0.3)"
                         for fw in (a, b))] for r in summary["specs"]]
    text += "\n\nThe optimizer each framework ran (its own class, or twinbench's spec rule where it has none):\n\n" + \
        tabulate(ran, headers=["spec", a, b], tablefmt=fmt, disable_numparse=True)
    folds = [[r["spec"], fw, k["folds"], f"{_pct(k['mean'])} ± {_pct(k['std'])}"]
             for r in summary["specs"] for fw, k in r["kfold"].items()]
    if folds:
        text += "\n\n" + tabulate(folds, headers=["spec", "framework", "folds", "validation acc % (mean ± std)"],
                                  tablefmt=fmt, disable_numparse=True)
    return text
