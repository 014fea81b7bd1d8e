"""tests/core: the tests that need neither framework. They must import neither: a
module that pulls TensorFlow or PyTorch into the spec, the data, the reference, the
reader or the benchmark's bookkeeping fails this session."""
from __future__ import annotations

import sys

import pytest

FRAMEWORK_MODULES = ("tensorflow", "torch", "keras")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    loaded = sorted(m for m in FRAMEWORK_MODULES if m in sys.modules)
    if loaded:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"tests/core imported {', '.join(loaded)}: these tests must need neither framework", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
