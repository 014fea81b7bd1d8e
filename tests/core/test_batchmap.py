"""The small-model map's pieces that need no framework: parsing --batch-sizes, how many
examples a point visits, the report (both measures, every point, gaps marked) and its figure."""
from __future__ import annotations

import pytest

from bench import batchmap


def test_parse_sizes_sorts_and_dedups():
    assert batchmap.parse_sizes("64, 1,8,64") == [1, 8, 64]


@pytest.mark.parametrize(("text", "named"), [("1,x", "'x'"), ("0", "0"), ("60001", "60001"), ("1,,8", "''")])
def test_parse_sizes_names_the_bad_entry(text, named):
    with pytest.raises(ValueError, match=f"--batch-sizes: {named}"):
        batchmap.parse_sizes(text)


def test_examples_per_point():
    assert batchmap.examples_for("fast", 1) == 60_000
    assert batchmap.examples_for("book", 1) == batchmap.BOOK_EXAMPLES  # at least BOOK_EXAMPLES examples,
    assert batchmap.examples_for("book", 8) == 8 * batchmap.MIN_STEPS  # at least MIN_STEPS steps,
    assert batchmap.examples_for("book", 1024) == 60_000  # at most a whole epoch


def _result() -> dict:
    point = {"device": "cpu", "framework": "torch", "variant": "fast", "tier": "tuned"}
    return {"environment": {"cpu": "Test CPU", "date": "2026-12-04T10:00:00", "git_commit": "abcdef123456"},
            "sizes": [1, 64],
            "points": [{**point, "batch_size": 1, "seconds_per_epoch": 0.704, "examples_per_second": 85_227.3},
                       {**point, "batch_size": 64, "seconds_per_epoch": 0.141, "examples_per_second": 425_531.9},
                       {**point, "variant": "book", "tier": None, "batch_size": 64, "seconds_per_epoch": 0.846,
                        "examples_per_second": 70_921.9}]}


def test_table_gives_both_measures_and_marks_gaps():
    text = batchmap.table(_result())
    assert "Test CPU · 2026-12-04 · commit abcdef1" in text
    per_second, per_epoch = text.split("Seconds per 60,000-example epoch")
    assert "| cpu      | torch       | fast      | 85,227    | 425,532    |" in per_second
    assert "| cpu      | torch       | book      | —         | 70,922     |" in per_second
    assert "| 0.704     | 0.141      |" in per_epoch and "| —         | 0.846      |" in per_epoch


def test_write_makes_json_md_and_png(tmp_path):
    batchmap.write(_result(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch_map.json", "batch_map.md", "batch_map.png"]
    assert (tmp_path / "batch_map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_the_retracing_warning_is_held_back(caplog):
    logger = __import__("logging").getLogger("tensorflow")

    def measure():
        logger.warning("5 out of the last 13 calls to <f> triggered tf.function retracing. Tracing is expensive")
        logger.warning("a real warning")
        return {"ok": True}
    with caplog.at_level("WARNING", logger="tensorflow"):
        assert batchmap._quiet_retracing(measure) == {"ok": True}
        logger.warning("after: triggered tf.function retracing")
    assert [r.getMessage() for r in caplog.records] == ["a real warning", "after: triggered tf.function retracing"]
