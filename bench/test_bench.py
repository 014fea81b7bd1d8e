"""The benchmark rows (run by `twinbench bench`, which exports the settings).

Each row is written to <out>/rows/<id>.json as soon as it is measured, skipped or
failed. A failed parity gate or an error fails the row's test; a wall-clock
number never does (targets are reported, not asserted).
"""
from __future__ import annotations

import datetime
import time
import traceback

import pytest

from bench import measure
from bench.matrix import PRESETS, Row, Settings
from bench.results import already_measured, load_average, load_rows, summarize, write_row
from common.config import load_spec
from common.history import DIVERGED, Diverged


def _history(epochs: list[dict]) -> list[dict]:
    """The per-epoch rows in the shape of common.run.plot_curves (test set as 'val')."""
    return [{"epoch": e["epoch"], "loss": e.get("loss"), "accuracy": e.get("accuracy"),
             "val_loss": e.get("test_loss"), "val_accuracy": e.get("test_accuracy"), "seconds": e["seconds"]}
            for e in epochs]


def _line(record: dict) -> str:
    s = record.get("summary")
    if not s:
        return f"{record['id']}: {record['status']}: {record.get('reason', '')}"
    return (f"{record['id']}: median {s['median']:.3g} s/epoch (min {s['min']:.3g}, max {s['max']:.3g}), "
            f"first epoch {s['time_to_first_epoch']:.3g} s, eval {s['eval_seconds']:.3g} s, "
            f"test acc {s['test_accuracy']:.4f}")


def test_row(row: Row, settings: Settings, data_for, environment: dict, benchmark, capsys) -> None:
    if settings.resume and already_measured(settings.out, row, settings):
        pytest.skip("--resume: already measured")
    spec = load_spec(row.preset)
    record = {"id": row.id, "framework": row.framework, "variant": row.variant, "preset": row.preset,
              "device": row.device, "batch_size": spec.training.batch_size, "target": row.target,
              "settings": settings.key(row), "measured_at": datetime.datetime.now().isoformat(timespec="seconds")}
    load_before, start = load_average(), time.perf_counter()
    benchmark.group = row.preset
    try:
        how = measure.measure_floor if row.is_floor else measure.measure_framework
        found = how(row, settings, spec, data_for(spec), benchmark)
        record.update(status="ok", **found, summary=summarize(found["examples"], found["epochs"]),
                      history=_history(found["epochs"]))
        if settings.startup and (row.is_floor or row.variant == "fast"):
            from bench import startup  # fresh processes, empty then warm compilation caches
            record["startup"] = startup.measure(row.framework, row.variant, row.preset, row.device)
        benchmark.extra_info.update(row=row.id, **record["summary"])
    except measure.Unavailable as exc:
        record.update(status="skipped" if isinstance(exc, measure.Skipped) else "unavailable", reason=str(exc))
    except measure.GateFailed as exc:
        record.update(status="gate_failed", reason=str(exc))
    except Diverged as exc:  # in the gate or a timed epoch: a non-finite loss
        record.update(status=DIVERGED, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded in the row; the other rows go on
        record.update(status="error", reason=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=8))
    record.update(loadavg=[load_before, load_average()], duration_s=time.perf_counter() - start,
                  threads=measure.threads(), environment=environment)
    write_row(settings.out, record)
    with capsys.disabled():
        print(f"\n  {_line(record)}", flush=True)
    if record["status"] in ("skipped", "unavailable"):
        pytest.skip(record["reason"])
    if record["status"] != "ok":
        pytest.fail(record["reason"], pytrace=False)


def test_accuracy_over_seeds(settings: Settings, data_for, capsys) -> None:
    """conf5 over seeds in both frameworks (full runs only; after the rows it chooses from)."""
    if settings.quick:
        pytest.skip("quick run: no accuracy-over-seeds study")
    preset = "conf5"
    if not any(r.preset == preset and not r.is_floor for r in settings.rows()) or preset not in PRESETS:
        pytest.skip(f"no {preset} framework row selected")
    from bench.accuracy import run_study
    spec = load_spec(preset)
    study = run_study(settings.out, load_rows(settings.out), spec, data_for(spec), settings.seeds,
                      settings.seed_epochs, settings.resume)
    with capsys.disabled():
        for fw, s in study["frameworks"].items():
            print(f"\n  accuracy over seeds, {fw}: " + (f"{s['mean']:.4f} ± {s['std']:.4f} ({s['variant']})"
                                                       if "mean" in s else s["reason"]), flush=True)
