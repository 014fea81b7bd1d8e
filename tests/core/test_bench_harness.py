"""The harness itself, without timing anything: row selection, statistics, the parity
gate's verdict, resume bookkeeping, the report and --compare. Fast (no framework needed
except where a test says so)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench import report, results, verify
from bench.matrix import FULL_EPOCH, Settings, all_rows, by_id, select
from common import reference as ref
from common.config import load_spec
from common.history import Diverged


def test_matrix_rows_and_targets() -> None:
    ids = [r.id for r in all_rows()]
    assert len(ids) == len(set(ids)) == 4 + 2 + 2 * 2 * 2 * 2
    assert ids[:6] == ["floor-conf1-cpu", "floor-conf5-cpu", "floor-conf1-cuda", "floor-conf5-cuda", "jax-conf1-cpu",
                       "jax-conf5-cpu"]
    assert by_id("jax-conf5-cpu").is_peer and not by_id("jax-conf5-cpu").is_floor
    assert "tf-book-conf1-cpu" in ids
    assert by_id("torch-fast-conf5-cuda").target == 0.035 and by_id("torch-fast-conf1-cuda").target == 0.65
    assert by_id("tf-fast-conf1-cpu").target == 1.0
    assert by_id("tf-book-conf5-cpu").target is None and by_id("floor-conf1-cpu").target is None
    assert [r.id for r in select(all_rows(), "torch-*-conf5-*", "cpu")] == ["torch-book-conf5-cpu",
                                                                           "torch-fast-conf5-cpu"]
    assert {r.id for r in select(all_rows(), "floor", "cuda")} == {"floor-conf1-cuda", "floor-conf5-cuda"}
    with pytest.raises(ValueError):
        select(all_rows(), device="tpu")


def test_settings_examples() -> None:
    """Rows that are compared train the same amount: quick conf1 rows (floor and peer included) on
    6,000 images; full runs on whole epochs, but for the book's conf1 rows (partial, labelled)."""
    quick, full = Settings(quick=True), Settings(quick=False, rounds=3)
    for rid in ("tf-book-conf1-cpu", "tf-fast-conf1-cpu", "floor-conf1-cpu", "jax-conf1-cpu"):
        assert quick.examples(by_id(rid)) == 6000
    assert quick.examples(by_id("tf-book-conf5-cpu")) == FULL_EPOCH
    assert full.examples(by_id("tf-book-conf1-cpu")) == 20000 and full.examples(by_id("tf-fast-conf1-cpu")) == FULL_EPOCH
    assert full.examples(by_id("floor-conf1-cpu")) == FULL_EPOCH == full.examples(by_id("jax-conf1-cpu"))
    assert Settings().threads == 1


def test_summarize_scales_partial_epochs() -> None:
    epochs = [{"seconds": 5.0, "wall_seconds": 5.5, "test_accuracy": 0.5, "eval_seconds": 0.3},
              *({"seconds": s, "wall_seconds": s + 0.1, "test_accuracy": 0.6, "eval_seconds": 0.2}
                for s in (2.0, 3.0, 4.0))]
    s = results.summarize(20000, epochs)
    assert s["scale"] == 3 and s["median"] == 9.0 and s["min"] == 6.0 and s["max"] == 12.0 and s["iqr"] == 3.0
    assert s["time_to_first_epoch"] == 5.5 + 2 * 3.0  # the first fit call's wall time (compile included)
    assert s["eval_seconds"] == 0.2 and s["test_accuracy"] == 0.6
    assert s["wall_overhead"] == pytest.approx(0.1)


def fake_api(perturb: float):
    """A NumPy 'framework' that fits with the reference, then adds `perturb` to every weight."""
    def fit(model, spec, data, epochs=None, **_):
        x, y = data[0], data[1]
        order = np.random.default_rng([spec.training.seed, 0]).permutation(len(x))
        for s in range(0, len(x), spec.training.batch_size):
            idx = order[s:s + spec.training.batch_size]
            _, model["w"], model["s"] = ref.train_step(spec, model["w"], model["s"], x[idx], y[idx])
        model["w"] = {k: (v + perturb).astype(np.float32) for k, v in model["w"].items()}
        return [{"seconds": 0.0}]

    def set_weights(model, w):
        model.update(w={k: v.astype(np.float64) for k, v in w.items()})
        model.setdefault("s", ref.init_state(load_spec("conf5"), model["w"]))
    return SimpleNamespace(build_model=lambda spec, device="cpu": {}, fit=fit, set_weights=set_weights,
                           get_weights=lambda m: m["w"], get_optimizer_state=lambda m, spec: m["s"])


@pytest.mark.parametrize("perturb,ok", [(0.0, True), (1e-3, False)])
def test_parity_gate_verdict(perturb: float, ok: bool) -> None:
    spec = load_spec("conf5")
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(300, 784)).astype(np.float32), rng.integers(0, 10, 300),
            rng.normal(size=(5, 784)).astype(np.float32), rng.integers(0, 10, 5))
    gate = verify.parity_gate(fake_api(perturb), spec, "cpu", data, steps=3)
    assert gate["ok"] is ok and gate["steps"] == 3 and gate["checks"][0]["reference_moved"] > 0


def test_parity_gate_reports_divergence() -> None:
    spec = load_spec("conf5")
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(300, 784)).astype(np.float32), rng.integers(0, 10, 300),
            rng.normal(size=(5, 784)).astype(np.float32), rng.integers(0, 10, 5))
    with pytest.raises(Diverged):
        verify.parity_gate(fake_api(np.nan), spec, "cpu", data, steps=3)


def stored(row_id: str, median: float | None, status: str = "ok", **extra) -> dict:
    r = by_id(row_id)
    summary = None if median is None else {"median": median, "min": median, "max": median, "iqr": 0.0,
                                           "time_to_first_epoch": median, "eval_seconds": 0.1,
                                           "test_accuracy": 0.95}
    return {"id": row_id, "framework": r.framework, "variant": r.variant, "preset": r.preset, "device": r.device,
            "batch_size": 64, "target": r.target, "status": status, "summary": summary,
            "settings": Settings().key(r), "examples": FULL_EPOCH, **extra}


def test_resume_report_and_compare(tmp_path) -> None:
    results.write_row(tmp_path, stored("floor-conf5-cpu", 0.4))
    results.write_row(tmp_path, stored("tf-fast-conf5-cpu", 0.8))
    results.write_row(tmp_path, stored("torch-fast-conf5-cpu", None, "error", reason="RuntimeError: boom"))
    s = Settings()
    assert results.already_measured(tmp_path, by_id("tf-fast-conf5-cpu"), s)
    assert not results.already_measured(tmp_path, by_id("torch-fast-conf5-cpu"), s)  # errors are redone
    assert not results.already_measured(tmp_path, by_id("tf-fast-conf5-cpu"), Settings(quick=False))
    text, written = report.write_report(tmp_path)
    assert "2.00x" in text and "error: RuntimeError: boom" in text
    assert max(len(line) for line in text.splitlines() if "|" not in line and not line.startswith(" ")) < 100
    assert written == [tmp_path / "latest.json", tmp_path / "latest.md", tmp_path / "epoch_times.png"]
    assert "not met" in (tmp_path / "latest.md").read_text()  # the wide table: every column
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert [r["row"] for r in latest["rows"]] == ["floor-conf5-cpu", "tf-fast-conf5-cpu", "torch-fast-conf5-cpu"]
    assert (tmp_path / "latest.md").read_text().count("|") > 10 and (tmp_path / "epoch_times.png").stat().st_size
    newer = {"rows": [{**latest["rows"][1], "median": 0.5}, {**latest["rows"][0], "median": 0.41}]}
    (tmp_path / "new.json").write_text(json.dumps(newer))
    table = report.compare(tmp_path / "latest.json", tmp_path / "new.json")
    assert "faster" in table and "same" in table and "only in old" in table


def test_commit_is_recorded_before_the_old_rows_go(tmp_path, monkeypatch) -> None:
    """A fresh run removes its old rows (tracked files) before measuring; the commit it records
    is read before that, so a run of a clean checkout is not marked '+dirty' by its own doing."""
    import subprocess

    from bench import cli
    from common import environment
    repo, row = tmp_path / "repo", tmp_path / "repo" / "out" / "rows" / "floor-conf1-cpu.json"
    row.parent.mkdir(parents=True)
    row.write_text("{}")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    monkeypatch.setattr(environment, "ROOT", repo)
    environment.git_commit.cache_clear()
    seen = []
    from bench import runner
    monkeypatch.setattr(runner, "run", lambda settings, say: seen.append(environment.git_commit()) or 0)
    monkeypatch.setattr(report, "write_report", lambda *a: ("", []))
    try:
        assert cli.main(["--only", "floor-conf1", "--device", "cpu", "--out", str(repo / "out"), "--overwrite"]) == 0
    finally:
        environment.git_commit.cache_clear()
    assert not row.exists() and len(seen) == 1 and len(seen[0]) == 40, seen  # a hash, no '+dirty'


def test_startup_processes_share_no_cache_with_the_machine(tmp_path) -> None:
    """The start-up measurement's processes keep every cache under its own directory, the
    temporary directory included (where inductor puts precompiled headers whatever its cache
    directory is): "cold" is cold even on a machine that compiled before."""
    from bench.startup import cache_env
    env = cache_env(tmp_path)
    for key in ("TORCHINDUCTOR_CACHE_DIR", "TWINBENCH_COMPILE_CACHE", "TMPDIR"):
        assert Path(env[key]).is_relative_to(tmp_path), key
    assert Path(env["TMPDIR"]).is_dir()  # Python's tempfile ignores a TMPDIR that does not exist


def test_floor_and_startup_targets() -> None:
    """Fast CPU rows are judged against their floor (conf1 1.3x, conf5 1.5x) and their start-up
    (a new process's first epoch: warm within 3 s of the steady epoch; PyTorch cold within 8 s)."""
    from bench.results import table_rows
    starts = {"torch-fast-conf1-cpu": (9.0, 3.3), "torch-fast-conf5-cpu": (7.9, 3.4), "tf-fast-conf1-cpu": (20.0, 3.2)}
    records = [stored("floor-conf1-cpu", 0.25), stored("floor-conf5-cpu", 0.2)] + [
        stored(rid, {"torch-fast-conf1-cpu": 0.4, "torch-fast-conf5-cpu": 0.2, "tf-fast-conf1-cpu": 0.3}[rid],
               startup={"cold": {"first_epoch": c}, "warm": {"first_epoch": w}}) for rid, (c, w) in starts.items()]
    rows = {r["row"]: r for r in table_rows({r["id"]: r for r in records}, [r["id"] for r in records])}
    assert rows["torch-fast-conf1-cpu"]["floor_met"] == "not met"  # 1.6x its floor
    assert rows["tf-fast-conf1-cpu"]["floor_met"] == "met" and rows["torch-fast-conf5-cpu"]["floor_met"] == "met"
    assert rows["torch-fast-conf1-cpu"]["startup_met"] == "not met: cold 9.0 s > 8 s"
    assert rows["torch-fast-conf5-cpu"]["startup_met"] == "not met: warm 3.2 s over steady"
    assert rows["tf-fast-conf1-cpu"]["startup_met"] == "met"  # warm 2.9 s over; no cold target for TF
    assert rows["floor-conf1-cpu"]["floor_met"] == rows["floor-conf1-cpu"]["startup_met"] == "—"


def test_results_folders_do_not_make_a_checkout_dirty_code_does(tmp_path, monkeypatch) -> None:
    """A run that rewrites the committed results (bench/results, docs/experiment) leaves the code as
    its commit has it; a changed source file does not, and a full benchmark refuses it."""
    import subprocess

    from bench import cli
    from common import environment
    repo = tmp_path / "repo"
    for path in ("bench/results/latest.json", "docs/experiment/summary.md", "common/code.py"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("a")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    monkeypatch.setattr(environment, "ROOT", repo)
    (repo / "bench/results/latest.json").write_text("b")
    (repo / "docs/experiment/summary.md").write_text("b")
    assert environment.changed_files() == []
    (repo / "common/code.py").write_text("b")
    assert environment.changed_files() == ["common/code.py"]
    settings = cli.settings_from(cli.parser().parse_args(["--out", str(tmp_path / "out")]))
    with pytest.raises(cli.UsageError, match=r"changes to tracked files \(common/code.py\)"):
        cli.check_tree(cli.parser().parse_args([]), settings)


def test_accuracy_study_of_one_framework_reports_without_a_comparison() -> None:
    """The GPU check measures PyTorch alone: a study with no second framework has no stats to report."""
    study = {"preset": "conf5", "epochs": 5, "seeds": [7, 8, 9],
             "frameworks": {"torch": {"row": "torch-fast-conf5-cpu", "variant": "fast", "accuracies": [0.95, 0.96, 0.95],
                                      "mean": 0.9533, "std": 0.0058},
                            "tf": {"reason": "skipped: tensorflow is not installed"}}}
    for fmt in ("simple", "github"):
        text = report.render_accuracy(study, fmt)
        assert "0.9533 ± 0.0058" in text and "tensorflow is not installed" in text and "TOST" not in text
    study["stats"] = {"difference": -0.0, "margin": 0.005, "tost_p": 0.0, "equivalent": True, "alpha": 0.05,
                      "paired": True, "tost_method": "exact: every paired difference is +0 (no spread to test)"}
    assert "mean difference torch - tf 0.0000" in " ".join(report.render_accuracy(study).split())  # never -0.0000
