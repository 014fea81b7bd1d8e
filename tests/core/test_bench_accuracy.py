"""The seeds study's choice of rows: the reason it gives for a framework it does not study."""
from __future__ import annotations

from bench import accuracy
from common.config import load_spec


def test_a_framework_without_rows_or_with_only_failed_rows_says_which(tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy.frameworks, "NAMES", ("tf", "torch"))
    for name in ("tf", "torch"):
        monkeypatch.setattr(accuracy.frameworks.get(name), "missing", lambda: None)
    records = {"torch-fast-conf5-cpu": {"framework": "torch", "preset": "conf5", "status": "failed"},
               "tf-fast-conf1-cpu": {"framework": "tf", "preset": "conf1", "status": accuracy.DONE}}
    study = accuracy.run_study(tmp_path, records, load_spec("conf5"), data=(), seeds=(7,), epochs=1, resume=False)
    assert study["frameworks"]["tf"] == {"reason": "no conf5 row of tf in this run"}
    assert study["frameworks"]["torch"] == {"reason": "no measured conf5 row of torch passed the parity gate"}
