"""One experiment run, executed inside a Dask worker (a process of its own, one thread).

A worker keeps what is expensive to make across its runs: the data, and one model per
(framework, variant, step) whose weights and optimizer state are reset to the run's seed,
so a compiled fast loop is reused instead of compiled again for every seed.
"""
from __future__ import annotations

import os
import socket
import time

import frameworks
from common import reference as ref
from common.config import step_key
from common.data import datasets, preprocessing
from common.history import COMPLETE, DIVERGED, Diverged
from twinbench.experiment.plan import Task

_DATA: dict = {}
_MODELS: dict = {}
_PINNED: set = set()


def _data(task: Task) -> tuple:
    t = task.spec.training
    key = (*preprocessing(task.spec).values(), t.dtype, t.evaluation, t.validation_split, t.k_folds, task.fold, task.train_examples)
    if key not in _DATA:
        x, y, x_eval, y_eval = datasets(task.spec, task.fold)
        n = task.train_examples or len(x)
        _DATA[key] = (x[:n], y[:n], x_eval, y_eval)
    return _DATA[key]


def _model(task: Task, api):
    key = (task.framework, task.variant, step_key(task.spec))
    if key not in _MODELS:
        _MODELS[key] = api.build_model(task.spec)
    return _MODELS[key]


def run_one(task: Task) -> dict:
    """Train the task's run from its seed's canonical weights; its record (history, status, timing)."""
    fw = frameworks.get(task.framework)
    if fw.name not in _PINNED:  # once per worker process, before the framework's runtime starts
        fw.configure()
        fw.set_threads(1)  # one thread per framework in a worker: the workers share the cores
        _PINNED.add(fw.name)
    api = fw.variant(task.variant)
    data = _data(task)
    model = _model(task, api)
    start = ref.start_weights(task.spec, task.spec.training.seed)
    api.set_weights(model, start)
    api.set_optimizer_state(model, task.spec, ref.init_state(task.spec, start))
    history: list[dict] = []
    began = time.perf_counter()
    status, reason = COMPLETE, None
    try:
        api.fit(model, task.spec, data, epochs=task.spec.training.epochs, on_epoch=history.append)
    except Diverged as exc:
        status, reason = DIVERGED, str(exc)
    return {"key": task.key, "arm": task.arm, "spec": task.label, "framework": task.framework,
            "variant": task.variant, "optimizer": api.describe_optimizer(task.spec), "seed": task.seed,
            "fold": task.fold, "status": status, "reason": reason,
            "history": history, "seconds": time.perf_counter() - began, "train_examples": len(data[0]),
            "worker": f"{socket.gethostname()}:{os.getpid()}", "versions": {fw.name: fw.versions()["version"]},
            "environment": {"tier": history[0].get("tier") if history else None}}
