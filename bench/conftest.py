"""Fixtures of the benchmark session: the settings (from `twinbench bench`, else quick
defaults), the rows to measure, data loaded once, the environment described once."""
from __future__ import annotations

import pytest

from bench.matrix import Settings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "row" in metafunc.fixturenames:
        rows = Settings.from_env().rows()
        metafunc.parametrize("row", rows, ids=[r.id for r in rows])


@pytest.fixture(scope="session")
def settings() -> Settings:
    s = Settings.from_env()
    import frameworks
    for message in frameworks.configure():  # before any row starts a framework's runtime
        print(f"twinbench bench: {message}", flush=True)
    if s.threads:  # only when asked: by default the frameworks use the machine as they choose
        for name in frameworks.available():
            frameworks.get(name).set_threads(s.threads)  # a refusal (runtime started) leaves the recorded value
    return s


@pytest.fixture(scope="session")
def data_for():
    """data_for(spec) -> (x_train, y_train, x_test, y_test), loaded once per kind of data."""
    from common.data import datasets
    cache: dict = {}

    def get(spec):
        t = spec.training
        key = (t.standardize, t.dtype, t.evaluation, t.validation_split)
        if key not in cache:
            cache[key] = datasets(spec)
        return cache[key]
    return get


@pytest.fixture(scope="session")
def environment(settings: Settings) -> dict:
    """The machine and the frameworks the selected rows use (another framework is not loaded)."""
    import frameworks
    used = tuple(name for name in frameworks.NAMES if any(r.framework == name for r in settings.rows()))
    return frameworks.describe(used)
