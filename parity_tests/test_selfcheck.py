"""The fast paths' self-check rejects a compiled loop that is wrong in Adam's second moment v
alone: each optimizer slot is compared at its own scale and the step count exactly
(common.compare.compare_state), where one scale for the whole state, the step count's, let v
(about 1e-4 here) be anything. The loop's v is made 0.03% too large after every step, which
moves the weights by less than the check's tolerance over its steps: only v shows it."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import frameworks
from common.compare import compare_sets
from common.config import load_spec
from common.selfcheck import CHECK_STEPS
from common.tolerances import tol
from parity_tests import harness as H

SPEC = H.replace(load_spec("conf5"), **{"training.batch_size": 16, "network.hidden_units": 16})
N = 160
WRONG = 1 + 3e-4  # v's factor after each step of the planted loop


def _build(fw: str) -> tuple[object, list[str]]:
    """The fast epoch built for a model of SPEC, and the fast path's warnings (one per tier dropped)."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        run = frameworks.get(fw).fast().compile_epoch(H.impl(fw).build_model(SPEC, seed=1), SPEC, N)
    return run, [str(w.message) for w in said if f"{frameworks.get(fw).package}.fast" in str(w.message)]


def _plant_torch(monkeypatch, tmp_path) -> str:
    """Every public tier's traced step scales v after the step; returns the first tier tried."""
    import torch_impl.fast as fast
    from torch_impl import _step
    monkeypatch.setenv("TWINBENCH_TUNED", "0")
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    monkeypatch.setattr(fast, "_LOOPS", {})
    real = _step.trace

    def trace(model, spec, decompose):
        gm, n_p = real(model, spec, decompose), len(list(model.parameters()))
        first_v = n_p + len(list(model.buffers())) + n_p  # after the parameters, the buffers and the m slots

        def step(*args):
            out = gm(*args)
            for v in args[first_v:first_v + n_p]:
                v.mul_(WRONG)
            return out
        return step
    monkeypatch.setattr(_step, "trace", trace)
    import torch
    return "loop" if hasattr(torch, "while_loop") else "step"


def _plant_tf(monkeypatch) -> str:
    """The compiled epoch (inside tf.function only, not the book's step) scales v after each step."""
    import tensorflow as tf
    from tf_impl import compiled
    real = compiled._counted

    def counted(model, spec, xb, tb):
        out = real(model, spec, xb, tb)
        if tf.inside_function():
            for v in model.optimizer._velocities:  # TF: Keras's Adam keeps v there
                v.assign(v * WRONG)
        return out
    monkeypatch.setattr(compiled, "_counted", counted)
    return "xla"


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
def test_self_check_rejects_a_loop_wrong_only_in_adams_v(fw: str, monkeypatch, tmp_path):
    first = _plant_torch(monkeypatch, tmp_path) if fw == "torch" else _plant_tf(monkeypatch)
    run, said = _build(fw)
    assert run.tier == "book", (run.tier, said)  # every compiled tier was refused
    assert said and f"tier {first!r} failed" in said[0], said
    assert "disagrees with the book's step: optimizer state: v/" in said[0], said[0]


def test_one_scale_for_the_whole_state_would_not_see_it():
    """Why the state is compared slot by slot: at the scale of the whole state (the step count,
    CHECK_STEPS) the same v is far inside the tolerance."""
    v = {"v/hidden/kernel": np.full(4, 2e-4), "step": np.asarray(float(CHECK_STEPS))}
    wrong = {**v, "v/hidden/kernel": v["v/hidden/kernel"] * WRONG ** CHECK_STEPS}
    t = tol("float32", "self-check")
    assert compare_sets(wrong, v, t)[0].passed
    from common.compare import compare_state
    assert not compare_state(wrong, v, t)[0].passed
