"""The machinery the four fits and both fast paths share, without a framework: the tiers'
fall-back (common.tiers), the epoch loop (common.epochs) and the self-check's verdict
(common.selfcheck)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from common.config import load_spec
from common.epochs import epoch_order, fit_epochs
from common.history import Diverged
from common.selfcheck import After, check_data, disagreement
from common.tiers import Tier, Unmet, first_working


def _fails(message: str):
    def build():
        raise RuntimeError(message)
    return build


def _said(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]


def test_the_first_tier_that_builds_runs_and_each_failure_warns_once() -> None:
    tiers = [Tier("off", _fails("never built"), lambda: "not here"), Tier("a", _fails("a broke\nmore lines")),
             Tier("b", lambda: "built by b"), Tier("c", lambda: "never reached")]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert first_working(tiers, "who") == ("built by b", "b")
    assert _said(record) == ["who: tier 'a' failed (RuntimeError: a broke); trying 'b'"]  # 'off': no word


def test_a_failed_prerequisite_drops_every_tier_that_needs_it_with_one_warning() -> None:
    calls = []

    def traced():
        calls.append("trace")
        raise Unmet("tracing the step", "make_fx broke")
    needs = frozenset({"tracing the step"})
    tiers = [Tier("t1", traced, needs=needs), Tier("t2", traced, needs=needs), Tier("book", lambda: "book")]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert first_working(tiers, "who") == ("book", "book")
    assert calls == ["trace"]
    assert _said(record) == ["who: tracing the step failed (make_fx broke); tiers t1, t2 dropped, trying 'book'"]


def test_no_tier_left_is_an_error_naming_them(monkeypatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="no tier could build the epoch .a, b."):
            first_working([Tier("a", _fails("x")), Tier("b", _fails("y"))], "who")


def _fit(prepare=None, losses=(0.5, 0.25), initial_epoch=0, epochs=None):
    spec = load_spec("conf5")
    seen, rows = [], []

    def train_epoch(order, bar):
        seen.append(order)
        return losses[len(seen) - 1], 0.75
    history = fit_epochs(spec, 10, train_epoch, lambda: (0.4, 0.8), epochs or len(losses), initial_epoch,
                         rows.append, None, prepare)
    return spec, seen, rows, history


def test_the_epoch_loop_records_each_epoch_and_the_compile_apart() -> None:
    spec, seen, rows, history = _fit(prepare=lambda: {"tier": "xla"}, initial_epoch=0)
    assert rows == history and [r["epoch"] for r in history] == [1, 2]
    assert history[0]["tier"] == "xla" and history[0]["compile_seconds"] >= 0
    assert "tier" not in history[1] and "compile_seconds" not in history[1]
    assert history[1] == {"epoch": 2, "loss": 0.25, "accuracy": 0.75, "val_loss": 0.4, "val_accuracy": 0.8,
                          "seconds": history[1]["seconds"]}
    assert [list(o) for o in seen] == [list(epoch_order(spec, e, 10)) for e in (0, 1)]
    assert sorted(seen[0]) == list(range(10)) and list(seen[0]) != list(seen[1])  # shuffled per epoch
    _, seen, _, history = _fit(losses=(0.5,), initial_epoch=1, epochs=2)
    assert [r["epoch"] for r in history] == [2] and "compile_seconds" not in history[0]


def test_the_epoch_loop_stops_a_diverged_run_after_recording_its_epoch() -> None:
    with pytest.raises(Diverged, match="epoch 1"):
        _fit(losses=(float("nan"), 0.1))


def test_the_self_check_names_what_disagrees() -> None:
    spec = load_spec("conf5")
    start = {"w": np.zeros(3, np.float32)}
    want = After({"w": np.array([1e-3, -2e-3, 0.0], np.float32)}, {"m": np.ones(3, np.float32)}, 10.0, 4)
    same = After({"w": want.weights["w"] * (1 + 1e-7)}, dict(want.state), 10.0000001, 4)
    assert disagreement(spec, start, same, want) is None
    doubled = After({"w": want.weights["w"] * 2}, dict(want.state), 10.0, 4)
    assert disagreement(spec, start, doubled, want).startswith("weights")
    assert disagreement(spec, start, After(want.weights, {"m": np.zeros(3)}, 10.0, 4), want).startswith("optimizer")
    assert "correct 3 vs 4" in disagreement(spec, start, After(want.weights, want.state, 10.0, 3), want)
    nan, w_nan = float("nan"), {"w": np.full(3, np.nan, np.float32)}
    diverged = After(w_nan, {"m": np.full(3, np.nan, np.float32)}, nan, 4)
    assert disagreement(spec, start, After(w_nan, diverged.state, nan, 3), diverged) is None  # argmax over NaN
    assert "loss sum" in disagreement(spec, start, After(w_nan, diverged.state, 1.0, 4), diverged)
    x, labels, order = check_data(spec, 200, 2)
    assert x.shape == (200, 784) and x.dtype == np.float32 and np.any(x[:128]) and not np.any(x[128:])
    assert list(order) == list(range(200)) and labels.max() < 10
