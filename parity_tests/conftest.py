"""Session set-up of the parity suite: numerics pinned (through the framework registry)
before TensorFlow is imported, the --run-slow opt-in, the run header, the closing
summary, and the defaults catalogue (written by `tox -e catalogue`, otherwise checked
against the committed docs/differences.md)."""
from __future__ import annotations

import frameworks

# before any TF import: twinbench's settings, then the parity runs' reproducible numerics
PRESENT = [frameworks.get(name) for name in frameworks.available()]  # a machine may have one framework
PIN_ERRORS: list[str] = frameworks.configure() + [e for fw in PRESENT for e in fw.pin_numerics()]

from parity_tests import catalogue, harness  # noqa: E402


def numerics() -> dict[str, object]:
    """The pinned settings as the libraries report them now."""
    return {k: v for fw in PRESENT for k, v in fw.numerics().items()}


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (accuracy parity over full MNIST epochs)")


def pytest_report_header(config):
    import numpy as np
    versions = ", ".join(f"{fw.name} {fw.versions()['version']}" for fw in PRESENT)
    pinned = ", ".join(f"{k}={v}" for k, v in numerics().items())
    lines = [f"twinbench parity: {versions}, numpy {np.__version__}", f"numerics pinned: {pinned}",
             *frameworks.skipped()]
    return lines + [f"numerics NOT pinned: {e}" for e in PIN_ERRORS]


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:  # deselected (reported as such), not skipped
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_sessionfinish(session, exitstatus):
    if not catalogue.complete():
        return
    outcome, detail = catalogue.finish()
    session.config._twinbench_catalogue = outcome, detail
    if outcome == "stale" and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tr = terminalreporter
    if not harness.STATS["arrays"] and not harness.CONFIGS:
        return
    tr.section("twinbench parity summary")
    tr.write_line(f"configurations checked: {len(harness.CONFIGS)}; array assertions: "
                  f"{harness.STATS['arrays']} ({harness.STATS['elements']:,} elements)")
    for (dtype, quantity), (ratio, where) in sorted(harness.WORST.items()):
        tr.write_line(f"  worst {dtype:7s} {quantity:10s}: {ratio:8.2e} of its tolerance  ({where})")
    outcome, detail = getattr(config, "_twinbench_catalogue", (None, None))
    if outcome == "written":
        tr.write_line(f"defaults catalogue written to {detail}")
    elif outcome == "current":
        tr.write_line("defaults catalogue: docs/differences.md matches this run")
    elif outcome == "stale":
        tr.write_line(f"FAILED: docs/differences.md is stale ({detail}); `tox -e catalogue` rewrites it", red=True)
    elif catalogue.MEASURED:
        missing = sorted(set(catalogue.IDS) - set(catalogue.MEASURED))
        tr.write_line(f"defaults catalogue not checked ({len(missing)} of {len(catalogue.IDS)} entries not measured)")
