"""Running the selected rows, one after another (timing stays sequential): the thread policy set
before any framework starts, each row checked, timed and stored the moment it ends, then the
accuracy study of full runs.

<out>/rows/<id>.json   one row: status ok | gate_failed | check_failed | diverged | error | skipped |
                       unavailable, and for every status the machine, commit and threads in force
"""
from __future__ import annotations

import datetime
import time
import traceback
from typing import Callable

import frameworks
from bench import measure, verify
from bench.threads import apply_policy, policy, threads_in_force
from bench.matrix import PRESETS, Row, Settings
from bench.results import already_measured, load_rows, summarize, write_row
from common.data import preprocessing
from common.environment import load_average
from common.config import load_spec
from common.history import DIVERGED, Diverged

FAILED = ("gate_failed", "check_failed", DIVERGED, "error")


def line(record: dict) -> str:
    """A row's result in one line."""
    s = record.get("summary")
    if not s:
        return f"{record['id']}: {record['status']}: {record.get('reason', '')}"
    acc = s["test_accuracy"]
    rounds = f"median of {s['rounds']} timed epochs" if s["rounds"] > 1 else "one timed epoch"
    return (f"{record['id']}: {s['median']:.3g} s/epoch ({rounds}), test acc "
            f"{'—' if acc is None else f'{acc:.4f}'}" + (f", tier {record['tier']}" if record.get("tier") else ""))


def measure_row(row: Row, settings: Settings, data: tuple, environment: dict,
                progress: Callable[[str], None] | None = None) -> dict:
    """Check and time one row; its record, whatever happened (the reason when it did not measure)."""
    spec = load_spec(row.preset)
    record = {"id": row.id, "framework": row.framework, "variant": row.variant, "preset": row.preset,
              "device": row.device, "batch_size": spec.training.batch_size, "target": row.target,
              "settings": settings.key(row), "measured_at": datetime.datetime.now().isoformat(timespec="seconds")}
    load_before, start = load_average(), time.perf_counter()
    try:
        how = measure.measure_baseline if row.is_floor or row.is_peer else measure.measure_framework
        found = how(row, settings, spec, data, progress)
        record.update(status="ok", **found, summary=summarize(found["examples"], found["epochs"]))
        if settings.startup and (row.is_floor or row.is_peer or row.variant == "fast"):
            from bench import startup  # fresh processes, empty then warm compilation caches
            progress("a new process's first epoch, cold and warm caches") if progress else None
            record["startup"] = startup.measure(row.framework, row.variant, row.preset, row.device, settings.threads)
    except measure.Unavailable as exc:
        record.update(status="skipped" if isinstance(exc, measure.Skipped) else "unavailable", reason=str(exc))
    except verify.GateFailed as exc:
        record.update(status="check_failed" if exc.found else "gate_failed", reason=str(exc), **exc.found)
    except Diverged as exc:  # in the gate or a timed epoch: a non-finite loss
        record.update(status=DIVERGED, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded in the row; the other rows go on
        record.update(status="error", reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
    record.update(loadavg=[load_before, load_average()], duration_s=time.perf_counter() - start,
                  policy=policy(settings), threads=threads_in_force(row), environment=environment)
    return record


def run(settings: Settings, say: Callable[[str], None] = print) -> int:
    """Every selected row in order, then (full runs) the accuracy study; the number of rows that failed."""
    rows = settings.rows()
    used = tuple(n for n in frameworks.NAMES if any(r.framework == n for r in rows))
    for message in apply_policy(settings, used):
        say(f"twinbench bench: {message}")
    environment, data, failed = frameworks.describe(used), {}, 0
    for i, row in enumerate(rows, 1):
        head = f"[{i}/{len(rows)}] {row.id}"
        if settings.resume and already_measured(settings.out, row, settings):
            say(f"{head}: already measured with these settings (--resume)")
            continue
        say(f"{head}: checking and timing")
        record = measure_row(row, settings, datasets_for(data, load_spec(row.preset)), environment,
                             lambda text: say(f"{head}: {text}"))
        write_row(settings.out, record)
        say(f"{head}: {line(record).split(': ', 1)[1]}")
        failed += record["status"] in FAILED
    if not settings.quick and "conf5" in PRESETS and any(r.preset == "conf5" and r.framework in used for r in rows):
        from bench.accuracy import run_study
        spec = load_spec("conf5")
        say("accuracy over seeds: conf5, each framework's fastest checked row, "
            f"{settings.seed_epochs} epochs, seeds {', '.join(map(str, settings.seeds))}")
        run_study(settings.out, load_rows(settings.out), spec, datasets_for(data, spec), settings.seeds,
                  settings.seed_epochs, settings.resume)
    return failed


def datasets_for(data: dict, spec) -> tuple:
    """(x_train, y_train, x_test, y_test) for `spec`, loaded once per kind of data into `data`."""
    key = (*preprocessing(spec).values(), spec.training.dtype)
    if key not in data:
        from common.data import datasets
        data[key] = datasets(spec)
    return data[key]
