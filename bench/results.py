"""Results on disk: one JSON per row, written atomically the moment the row is measured,
and the summary of a run: statistics per row and the table's cells.

<out>/rows/<id>.json   one row (bench.runner: its status, measurements, checks, machine and threads)
<out>/accuracy.json    the accuracy-over-seeds study (bench.accuracy)
<out>/latest.{json,md} and the PNGs are made from these by bench.report.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.matrix import COLD_FIRST_EPOCH, FULL_EPOCH, WARM_OVER_STEADY, Row, Settings, by_id
from common.files import write_json

DONE = "ok"


def row_path(out: str | Path, row_id: str) -> Path:
    return Path(out) / "rows" / f"{row_id}.json"


def write_row(out: str | Path, record: dict) -> Path:
    """Store one row (atomically: an interrupted run never leaves half a file)."""
    return write_json(row_path(out, record["id"]), record)


def load_rows(out: str | Path) -> dict[str, dict]:
    """Every stored row, by id (unreadable files are skipped)."""
    rows = {}
    for path in sorted((Path(out) / "rows").glob("*.json")):
        try:
            record = json.loads(path.read_text())
            rows[record["id"]] = record
        except (OSError, ValueError, KeyError):
            continue
    return rows


def already_measured(out: str | Path, row: Row, settings: Settings) -> bool:
    """--resume: the row is stored, measured ('ok') and with this run's settings."""
    path = row_path(out, row.id)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return record.get("status") == DONE and record.get("settings") == settings.key(row)


def summarize(examples: int, epochs: list[dict]) -> dict:
    """Per-epoch statistics scaled to a full 60,000-example epoch.

    Epoch times are the `seconds` each fit reports (training only); timed epochs are
    all but the first. time_to_first_epoch: the first fit call's wall time, so tracing
    and compilation count wherever a variant does them (torch_impl.fast compiles before
    its epoch clock starts); for a partial epoch plus (scale - 1) x the median.
    """
    scale = FULL_EPOCH / examples
    first, timed = epochs[0], epochs[1:] or epochs[:1]
    build = first.get("build_seconds", 0.0)  # a fast row's loop, built in its gate before the first epoch
    secs = np.array([e["seconds"] for e in timed], dtype=float)
    med = float(np.median(secs))
    q25, q75 = np.percentile(secs, [25, 75])
    evals = [e["eval_seconds"] for e in (epochs[1:] or epochs) if "eval_seconds" in e]
    last = epochs[-1]
    return {"scale": scale, "median": med * scale, "min": float(secs.min()) * scale,
            "max": float(secs.max()) * scale, "iqr": float(q75 - q25) * scale, "rounds": len(epochs) - 1,
            "time_to_first_epoch": build + first.get("wall_seconds", first["seconds"]) + (scale - 1.0) * med,
            "epochs": len(epochs), "examples": examples,
            "eval_seconds": float(np.median(evals)) if evals else None,
            "test_accuracy": last.get("test_accuracy"), "test_accuracies": [e.get("test_accuracy") for e in epochs],
            "wall_overhead": float(np.median([e["wall_seconds"] - e["seconds"] for e in timed]))}


def verdict(median: float | None, target: float | None) -> str:
    if target is None or median is None:
        return "—"
    return "met" if median <= target else "not met"


def first_epochs(record: dict) -> tuple[float | None, float | None]:
    """(cold, warm): a row's first epoch in a new process with empty and with warm caches."""
    start = record.get("startup") or {}
    return start.get("cold", {}).get("first_epoch"), start.get("warm", {}).get("first_epoch")


def startup_verdict(record: dict, median: float | None) -> str:
    """Whether a fast row's new-process first epochs meet the start-up targets: warm within
    WARM_OVER_STEADY seconds of the steady epoch, cold within COLD_FIRST_EPOCH (where set)."""
    cold, warm = first_epochs(record)
    if record.get("variant") != "fast" or warm is None or median is None:
        return "—"
    misses = [f"warm {warm - median:.1f} s over steady"] if warm - median > WARM_OVER_STEADY else []
    limit = COLD_FIRST_EPOCH.get((record.get("framework"), record.get("device")))
    if limit is not None and cold is not None and cold > limit:
        misses.append(f"cold {cold:.1f} s > {limit:g} s")
    return f"not met: {'; '.join(misses)}" if misses else "met"


def note(record: dict) -> str:
    """The table's remark for a row: why it has no numbers, or how its numbers were made."""
    status = record.get("status")
    if status != DONE:
        return f"{status}: {record.get('reason', '')}".strip()
    parts = []
    ex = record.get("examples", FULL_EPOCH)
    if ex != FULL_EPOCH and (record.get("settings") or {}).get("mode") != "quick":  # a quick run says it once
        parts.append(f"partial epochs of {ex:,} {'steps' if record['batch_size'] == 1 else 'examples'}, "
                     f"seconds scaled to 60,000")
    load, cpus = record.get("loadavg"), (record.get("threads") or {}).get("cpu_count")
    if load and cpus and max(x for x in load if x is not None) > cpus:
        parts.append(f"busy machine (load {max(x for x in load if x is not None):.1f} on {cpus} CPUs)")
    check = record.get("floor_check") or {}
    if check.get("ok") is None and check.get("reason"):
        parts.append(f"floor check {check['reason']}")
    return "; ".join(parts)


def checked(record: dict) -> str:
    """Whether the row's checks passed: its gate before timing and, for framework rows, the floor check after."""
    status = record.get("status")
    if status == "gate_failed":
        return "gate failed"
    if status == "check_failed":
        return "check failed"
    if status != DONE:
        return "—"
    check = record.get("floor_check")
    if check is None or check.get("ok"):
        return "yes"
    return "gate only"


def _baselines(records: dict[str, dict], kind: str) -> dict:
    """(preset, device) -> median s/epoch of the floors ('floor') or the JAX program ('jax': the
    peer rows on the CPU, the floor on CUDA, which is the same JAX program)."""
    out = {}
    for r in records.values():
        if r.get("status") != DONE:
            continue
        if r.get("framework") == kind or (kind == "jax" and r.get("framework") == "floor" and r.get("device") == "cuda"):
            out.setdefault((r["preset"], r["device"]), r["summary"]["median"])
    return out


def table_rows(records: dict[str, dict], order: list[str]) -> list[dict]:
    """One dict per row with the table's cells (None where there is no number)."""
    floors, peers = _baselines(records, "floor"), _baselines(records, "jax")
    out = []
    for rid in order:
        r = records.get(rid)
        if r is None:
            continue
        s = r.get("summary") or {}
        med, where = s.get("median"), (r.get("preset"), r.get("device"))
        framework_row = r.get("framework") not in ("floor", "jax")
        x_floor = med / floors[where] if med and where in floors and framework_row else None
        x_jax = med / peers[where] if med and where in peers and framework_row else None
        known, (cold, warm) = _known(rid), first_epochs(r)
        floor_target = known.floor_target if known else None
        out.append({"row": rid, "tier": r.get("tier"), "status": r.get("status"), "median": med, "min": s.get("min"),
                    "max": s.get("max"), "iqr": s.get("iqr"), "time_to_first_epoch": s.get("time_to_first_epoch"),
                    "cold_start": cold, "warm_start": warm, "eval_seconds": s.get("eval_seconds"),
                    "test_accuracy": s.get("test_accuracy"),
                    "trained": f"{s['epochs']} × {s['examples']:,}" if s.get("epochs") else None,
                    "x_floor": x_floor, "x_jax": x_jax, "target": r.get("target"), "met": verdict(med, r.get("target")),
                    "floor_target": floor_target, "floor_met": verdict(x_floor, floor_target),
                    "startup_met": startup_verdict(r, med), "checked": checked(r), "optimizer": r.get("optimizer"),
                    "threads": (r.get("settings") or {}).get("threads"), "note": note(r)})
    return out


def _known(row_id: str) -> Row | None:
    try:
        return by_id(row_id)
    except ValueError:  # a row of an older matrix
        return None
