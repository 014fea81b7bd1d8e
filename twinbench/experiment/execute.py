"""Runs on an existing engine: every task is a Dask task. By default a LocalCluster on this
machine (one worker process per core, one thread each); with an address, the scheduler of
an existing cluster (`dask scheduler` / `dask worker`, dask-jobqueue, ...).

Each run's record is written atomically under <out>/runs/ as it finishes; --resume skips
the runs whose record is complete and made with the same settings; a run whose worker died
is retried by Dask (up to its allowed failures) and otherwise recorded as failed; Ctrl-C
cancels what is left and keeps every finished run.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

from common.config import SpecError, spec_from_dict
from common.files import write_json
from common.history import COMPLETE, FAILED
from twinbench.experiment.plan import Task
from twinbench.experiment.worker import run_one

CONNECT_TIMEOUT_S = 10


def run_path(out: str | Path, task: Task) -> Path:
    return Path(out) / "runs" / f"{task.key}.json"


def outcome(out: str | Path, task: Task) -> dict | None:
    """The task's record when it is finished (complete, or diverged: an outcome), else None."""
    try:
        record = json.loads(run_path(out, task).read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("status") in (COMPLETE, "diverged") else None


def finished(out: str | Path, task: Task) -> bool:
    """--resume: the task's record is finished and was made with the same settings."""
    record = outcome(out, task)
    stored, wanted = dict((record or {}).get("settings") or {}), task.settings()
    try:  # the spec compared by value: a record written before the layer stack holds its short form
        same_spec = spec_from_dict(stored.pop("spec", None) or {}) == task.spec
    except SpecError:
        return False
    return record is not None and same_spec and stored == {k: v for k, v in wanted.items() if k != "spec"}


@contextlib.contextmanager
def client_for(scheduler: str | None, workers: int | None = None):
    """A dask.distributed Client: of a LocalCluster (one process per core, one thread each), or
    connected to `scheduler`; SpecError naming the address when it cannot be reached."""
    from distributed import Client, LocalCluster
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise SpecError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'timed out'})") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    env = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=env, silence_logs=40) as cluster, Client(cluster) as client:
        yield client


def execute(tasks: list[Task], client, out: str | Path, resume: bool,
            on_done: Callable[[Task, dict], None] | None = None) -> dict:
    """Submit the tasks not yet finished; write each record as it arrives. Returns counts."""
    from distributed import as_completed
    todo = [t for t in tasks if not (resume and finished(out, t))]
    counts = {"planned": len(tasks), "skipped": len(tasks) - len(todo), "ran": 0, "failed": 0}
    if not todo:
        return counts
    futures = {client.submit(run_one, t, key=f"twinbench-{t.key}-{time.time_ns()}", pure=False): t for t in todo}
    try:
        for future in as_completed(futures):
            task = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - a killed worker (KilledWorker) or a crash in the run
                record = {"key": task.key, "arm": task.arm, "spec": task.label, "framework": task.framework,
                          "seed": task.seed, "fold": task.fold, "status": FAILED,
                          "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                          "history": []}
                counts["failed"] += 1
            record["settings"] = task.settings()
            write_json(run_path(out, task), record)
            counts["ran"] += 1
            on_done(task, record) if on_done else None
    except KeyboardInterrupt:
        client.cancel(list(futures))
        counts["interrupted"] = True
    return counts


def progress(total: int) -> Callable[[Task, dict], None]:
    """A tqdm bar over runs on a terminal, else one line per finished run (stderr)."""
    if sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=total, unit="run", desc="experiment", mininterval=0.5)
        return lambda task, record: bar.update(1)
    done = [0]

    def line(task: Task, record: dict) -> None:
        done[0] += 1
        last = (record.get("history") or [{}])[-1]
        acc = last.get("val_accuracy")
        print(f"[{done[0]}/{total}] {task.key}: {record['status']}"
              + (f", test accuracy {acc:.4f}" if acc is not None else "")
              + (f", {record['seconds']:.0f} s" if record.get("seconds") else ""), file=sys.stderr, flush=True)
    return line
