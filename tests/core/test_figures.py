"""The figures, read back from their matplotlib objects (Agg, nothing shown): whole-epoch
ticks, a 1-epoch run drawn as points, identical series both visible and named, legends off
the data, titles with the spec's description, the diff plot's tolerance line and labelled
worst tensors, and the bench chart's readable fast rows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report as bench_report
from common.config import load_spec
from plots.curves import curves_figure
from plots.experiment import experiment_figure
from plots.style import figure, identical_to
from twinbench.diff import report as diff_report
from twinbench.diff.sides import Side
from twinbench.diff.trace import Trace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    figure().close("all")


def history(epochs: int, shift: float = 0.0) -> list[dict]:
    return [{"epoch": e, "loss": 0.5 / e + shift, "accuracy": 0.9 + 0.01 * e - shift, "val_loss": 0.4 / e + shift,
             "val_accuracy": 0.91 + 0.01 * e - shift} for e in range(1, epochs + 1)]


def visible_ticks(ax) -> list[float]:
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def legend_clear_of_axes(fig) -> bool:
    fig.canvas.draw()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    boxes = [ax.get_window_extent() for ax in fig.axes if ax.get_visible()]
    return bool(legends) and not any(overlaps(lg.get_window_extent(), box) for lg in legends for box in boxes)


@pytest.mark.parametrize("epochs", [1, 3, 20])
def test_epoch_ticks_are_whole_epochs(epochs):
    fig = curves_figure({"torch fast": history(epochs)})
    for ax in fig.axes:
        ticks = visible_ticks(ax)
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        low, high = ax.get_xlim()
        assert low <= 0.5 and high >= epochs + 0.5  # half an epoch of room: the end points off the frame


def test_one_epoch_run_draws_a_point_per_series():
    fig = curves_figure({"torch fast": history(1)})
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 2  # train and eval
        assert all(len(line.get_xdata()) == 1 and line.get_marker() not in ("", "None", None) for line in lines)
        assert lines[0].get_marker() != lines[1].get_marker()  # train and eval tell apart as points


def test_identical_runs_are_both_visible_and_named():
    same = history(3)
    fig = curves_figure({"tf fast": same, "torch fast": [dict(r) for r in same]})
    ax = fig.axes[0]
    first, second = ax.get_lines()[0], ax.get_lines()[2]  # tf train, torch train
    assert list(first.get_ydata()) == list(second.get_ydata())
    # the one drawn underneath shows round the one on top: wider line, larger open marker
    assert first.get_linewidth() > second.get_linewidth() and first.get_markersize() > second.get_markersize()
    assert first.get_markerfacecolor() == "none"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "torch fast train (identical to tf fast train)" in labels, labels
    different = curves_figure({"tf fast": same, "torch fast": history(3, shift=0.01)})
    assert not any("identical" in t.get_text() for t in different.legends[0].get_texts())


def test_identical_means_values_not_names():
    assert identical_to({"a": [1.0, 2.0], "b": [1.0, 2.0 * (1 + 1e-9)], "c": [1.0, 2.001]}) == {"b": "a"}
    assert identical_to({"a": [float("nan")], "b": [float("nan")]}) == {"b": "a"}
    assert identical_to({"a": [1.0], "b": [1.0, 1.0]}) == {}


def test_curves_legend_is_off_the_data_and_title_is_kept():
    title = "conf5: " + load_spec("conf5").description
    fig = curves_figure({"tf fast": history(5), "torch fast": history(5, 0.01)}, title)
    assert legend_clear_of_axes(fig)
    assert fig._suptitle.get_text().replace("\n", " ") == title


def test_train_and_compare_titles_give_the_description(monkeypatch, tmp_path):
    import plots
    from twinbench import run
    seen = {}
    monkeypatch.setattr(plots, "plot_curves", lambda hist, path, title="": seen.setdefault("title", title))
    run.save_plot("torch", load_spec("conf3"), history(2), "fast", str(tmp_path / "p.png"))
    assert seen["title"] == f"conf3: {load_spec('conf3').description}"


def experiment_summary(**settings) -> dict:
    return json.loads((ROOT / "docs/experiment/summary.json").read_text()) | (
        {"settings": {"train_examples": None} | settings})


def test_experiment_names_identical_means_and_keeps_the_legend_off_the_panels():
    summary = experiment_summary()
    fig = experiment_figure(summary, "title")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(summary["specs"]) == 5
    titles = {ax.get_title().split(" ")[0]: ax.get_title() for ax in panels}
    assert "torch mean identical to tf" in titles["conf1"]  # tf and torch agree to the digit in conf1
    assert "identical" not in titles["conf4"]                # not in conf4
    assert load_spec("conf4").description.split(",")[0] in titles["conf4"].replace("\n", " ")
    assert legend_clear_of_axes(fig)
    for ax in panels:
        assert all(float(t).is_integer() for t in visible_ticks(ax))
        lines = [line for line in ax.get_lines() if line.get_label().startswith(("tf", "torch"))]
        widths = {line.get_label(): line.get_linewidth() for line in lines if "mean" in line.get_label()}
        assert widths["tf: mean, min-max band"] > widths["torch: mean, min-max band"]  # both visible


def test_small_experiment_is_legible():
    summary = experiment_summary(train_examples=2000)
    row = summary["specs"][0]
    for part in row["frameworks"].values():
        band = part["band"]
        for key in ("epochs", "mean", "min", "max"):
            band[key] = band[key][:2]
    summary["specs"] = [row]
    fig = experiment_figure(summary, "small")
    assert fig.get_size_inches()[0] * 100 >= 600  # was 350 px wide
    (ax,) = [ax for ax in fig.axes if ax.get_visible()]
    assert [t for t in visible_ticks(ax)] == [1, 2]
    assert not any(line.get_label() == "chapter's printout" for line in ax.get_lines())  # 60,000 vs 2,000
    assert "not drawn" in fig._suptitle.get_text()
    full = experiment_figure(experiment_summary(), "full")
    printed = [line for line in full.axes[0].get_lines() if line.get_label() == "chapter's printout"]
    assert len(printed) == 1 and len(printed[0].get_xdata()) == 6


def fake_trace(steps: int = 5, names: int = 19, beyond: str | None = None) -> Trace:
    spec = load_spec("conf5")
    tensors = [f"t{k:02d}" for k in range(names)]
    rows = []
    for s in range(1, steps + 1):
        row = {}
        for k, n in enumerate(tensors):
            ratio = 10.0 ** (-k / 4) * (50 if n == beyond and s > 1 else 1)
            row[n] = {"kind": "weight", "max_abs": ratio * 1e-6, "max_rel": ratio * 1e-6, "bits": 24 - ratio ** 0.1,
                      "ratio": ratio}
        rows.append({"step": s, "tensors": row})
    return Trace(Side("tf", spec, "tf:conf5"), Side("torch", spec, "torch:conf5"), "float32", rows)


def test_diff_plot_has_the_tolerance_line_and_labels_the_worst_tensors():
    fig = diff_report.bits_figure(fake_trace(beyond="t05"))
    bits, ratios = fig.axes
    tolerance = [line for line in ratios.get_lines() if line.get_label().startswith("parity tolerance")]
    assert len(tolerance) == 1 and set(tolerance[0].get_ydata()) == {1}
    assert ratios.get_yscale() == "log"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    drawn = [line.get_label() for line in bits.get_lines()]
    assert len(drawn) == diff_report.PLOTTED and drawn[0] == "t05"  # the one beyond tolerance first
    assert all(name in labels for name in drawn) and "the other 13 tensors (range)" in labels
    assert legend_clear_of_axes(fig)
    assert all(float(t).is_integer() for t in visible_ticks(ratios))


def test_diff_plot_of_one_step_draws_points():
    fig = diff_report.bits_figure(fake_trace(steps=1))
    assert all(line.get_marker() not in ("", "None", None) for line in fig.axes[0].get_lines())
    assert fig._suptitle.get_text().splitlines() == ["tf:conf5 vs torch:conf5, 1 step", load_spec("conf5").description]


def bench_rows() -> list[dict]:
    return json.loads((ROOT / "bench/results/latest.json").read_text())["rows"]


def test_bench_chart_labels_every_row_and_the_fast_decade():
    rows = [r for r in bench_rows() if r["median"]]
    fig = bench_report.epoch_times_figure(rows, "Seconds per epoch")
    ax = fig.axes[0]
    values = {t.get_text() for t in ax.texts}
    assert all(f"{r['median']:.3g} s" in values for r in rows)  # 0.14 s ... 49.6 s, each written
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert {"0.1", "0.2", "0.5", "1"} <= set(ticks), ticks  # labels inside the fast rows' decade
    assert ax.get_title() and legend_clear_of_axes(fig)
    key = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "PyTorch" in key and "target" in key


def test_bench_figures_redraw_from_stored_results(tmp_path):
    import shutil
    out = tmp_path / "results"
    shutil.copytree(ROOT / "bench/results", out)
    before = {p: (out / p).read_bytes() for p in ("latest.json", "latest.md")}
    bench_report.redraw(out)
    assert {p: (out / p).read_bytes() for p in before} == before  # nothing measured or rewritten
    assert (out / "epoch_times.png").read_bytes()[:4] == b"\x89PNG"
