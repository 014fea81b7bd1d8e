"""The README's results are the committed run's: its table is exactly what `python -m bench.report
bench/results` makes of bench/results/latest.json, and that run was made from a clean commit
(no '+dirty'), on a CPU the table's text names by family and model."""
from __future__ import annotations

import json
from pathlib import Path

from bench.report import readme_table

ROOT = Path(__file__).resolve().parents[2]
LATEST = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())


def test_the_readme_table_is_the_committed_runs():
    readme = (ROOT / "README.md").read_text()
    assert readme_table(LATEST) in readme, "README's table is stale: paste `python -m bench.report bench/results`"


def test_the_committed_run_is_of_a_clean_commit_and_names_its_cpu():
    env = LATEST["environment"]
    commit = env["git_commit"]
    assert len(commit) == 40 and not commit.endswith("+dirty"), commit
    info = env["cpu_info"]
    readme = (ROOT / "README.md").read_text()
    assert commit[:7] in readme and f"family {info['family']} model {info['model']}" in readme
    every = [r for r in LATEST["rows"] if r.get("median")]
    assert every and all(r.get("checked") == "yes" for r in every), [(r["row"], r.get("checked")) for r in every]
