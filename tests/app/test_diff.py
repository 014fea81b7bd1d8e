"""`twinbench diff`: per-tensor bits of agreement, the first divergence, layer localisation
of a mapping broken on purpose (in a test double of one layer, never in the product), the
catalogue's explanation, the HTML page in a real browser, and bad input."""
from __future__ import annotations

import json
from html import unescape

import numpy as np
import pytest

from common.config import load_spec, replace
from tests import browser
from twinbench.cli import main
from twinbench.diff import report, trace
from twinbench.diff.sides import Side, parse_side


def side(fw: str, spec, text: str | None = None) -> Side:
    return Side(fw, spec, text or f"{fw}:{spec.name}")


LEAKY = replace(load_spec("conf5"), **{"network.hidden_activation": "leaky_relu", "network.leaky_relu_slope": 0.1,
                                       "name": "leaky"})
BN = replace(load_spec("conf5"), **{"network.batch_norm.mode": "before_activation", "name": "bn"})


def broken_torch_slope(model):
    import torch
    model.activation = torch.nn.LeakyReLU(negative_slope=0.3)  # the spec says 0.1


def broken_tf_bn_epsilon(model):
    model.get_layer("bn").epsilon = 1e-5  # the spec says 1e-3


@pytest.mark.parametrize("spec,broken,edited,layer", [
    (LEAKY, "torch", broken_torch_slope, "activation"),
    (BN, "tf", broken_tf_bn_epsilon, "bn"),
], ids=["torch-leaky-slope", "tf-bn-epsilon"])
def test_broken_layer_is_localised_forward_and_backward(spec, broken, edited, layer):
    a, b = side("tf", spec), side("torch", spec)
    edits = {"edit_a": edited} if broken == "tf" else {"edit_b": edited}
    result = trace.run(a, b, steps=2, **edits)
    assert result.layers["forward"] == layer and result.layers["backward"] == layer, result.layers
    before = result.layers["layers"][:result.layers["layers"].index(layer)]
    assert all(r["ratio"] <= 1 for r in result.layers["rows"] if r["direction"] == "forward" and r["layer"] in before)
    assert result.first is not None and result.first["step"] == 1
    clean = trace.run(a, b, steps=2)  # the same pair unbroken: every layer agrees
    assert clean.layers["forward"] is None and clean.layers["backward"] is None and clean.first is None


def test_same_spec_float64_agrees_to_at_least_40_bits(tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["diff", "tf:conf5@float64", "torch:conf5@float64", "--steps", "25", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "no divergence beyond the parity tolerance" in text and "every layer agrees" in text
    record = json.loads(out.read_text())
    assert len(record["steps"]) == 25 and record["dtype"] == "float64"
    bits = [t["bits"] for s in record["steps"] for t in s["tensors"].values()]
    assert min(bits) >= 40, min(bits)


def test_default_adam_names_weights_step_and_catalogue(tmp_path, capsys):
    other = tmp_path / "torch-adam.toml"
    other.write_text('base = "conf5"\n[optimizer]\nepsilon = 1e-8\nepsilon_convention = "paper"\n')
    page, png = tmp_path / "d.html", tmp_path / "bits.png"
    assert main(["diff", "tf:conf5", f"torch:{other}", "--steps", "4", "--html", str(page), "--png", str(png)]) == 1  # they part
    text = capsys.readouterr().out
    assert "first divergence beyond the parity tolerance: step 1, hidden/kernel (weight)" in text, text
    assert "explained by the catalogue entries adam-epsilon, adam-epsilon-placement" in text
    assert png.read_bytes()[:4] == b"\x89PNG"
    html = unescape(page.read_text())
    assert 'id="plot"' in html and "data:image/png;base64," in html and "<table>" in html
    assert "differences.md#adam-epsilon-placement" in html and 'epsilon_convention = "paper"' in html


@pytest.mark.browser
def test_page_renders_in_headless_chromium(tmp_path):
    a, b = side("tf", load_spec("conf5")), side("torch", load_spec("conf5"))
    result = trace.run(a, b, steps=3)
    page = report.write_page(result, tmp_path / "diff.html", report.plot_bits(result))
    shot = browser.screenshot(page, tmp_path / "shot.png", size="1400,2000")
    assert shot.exists() and browser.png_colours(shot) > 10
    dom = browser.dump_dom(page, tmp_path / "profile")
    assert '<img id="plot"' in dom and "<table>" in dom and "grad:hidden/kernel" in dom
    assert "tf:conf5 vs torch:conf5" in dom


@pytest.mark.browser
def test_page_fits_1400_px(tmp_path):
    """The spec panels wrap (the description's long line was cut off at the right), and nothing
    else reaches past the right edge or scrolls sideways."""
    browser.chromium()
    result = trace.run(side("tf", load_spec("conf5")), side("torch", load_spec("conf5")), steps=2)
    page = report.write_page(result, tmp_path / "diff.html", report.plot_bits(result))
    measured = browser.overflow(page, tmp_path, width=1400)
    assert measured["scroll_width"] <= measured["viewport"], measured
    assert measured["wide"] == [], measured


def test_accuracy_reports_the_final_difference(tmp_path):
    """A fresh process, as a user's: the fast variants are imported before the trace starts TF's
    runtime, so TF's fast path gets its one intra-op thread (no warning that it could not)."""
    import os
    import subprocess
    import sys
    short = tmp_path / "short.toml"
    short.write_text('base = "conf5"\n[training]\nepochs = 1\n')
    done = subprocess.run([sys.executable, "-m", "twinbench", "diff", f"tf:{short}", f"torch:{short}", "--steps",
                           "2", "--accuracy"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "runtime started before tf_impl.fast was imported" not in done.stderr, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("final test accuracy"))
    values = [float(v.rstrip(",")) for v in line.split() if v.rstrip(",").replace(".", "").isdigit()]
    assert "after 1 epochs (fast variants)" in line and all(0.9 < v < 1 for v in values[1:3]), line


@pytest.mark.parametrize("args,message", [
    (["jax:conf5"], "unknown framework 'jax'"),
    (["tf:conf9"], "unknown preset 'conf9'"),
    (["tf:conf5@float16"], "unknown dtype 'float16'"),
    (["reference:conf5@float32"], "the reference computes in float64 only"),
    (["tf:conf5", "torch:conf5", "--steps", "0"], "--steps: expected a positive number"),
    (["tf:conf5", "torch:WIDE"], "different shapes: hidden/kernel (784, 25) vs (784, 40)"),
])
def test_bad_input_is_one_line(args, message, tmp_path, capsys):
    wide = tmp_path / "wide.toml"
    wide.write_text('base = "conf5"\n[network]\nhidden_units = 40\n')
    args = [a.replace("WIDE", str(wide)) for a in args]
    assert main(["diff", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_parse_side():
    s = parse_side("torch:conf1@float64")
    assert s.framework == "torch" and s.spec.name == "conf1" and s.dtype == "float64"
    assert parse_side("reference:conf3").dtype == "float64"
    assert np.isclose(parse_side("tf").spec.optimizer.learning_rate, 0.001)  # conf5 by default
