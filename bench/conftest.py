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
    if s.threads:  # only when asked: by default the frameworks use the machine as they choose
        import numba
        import tensorflow as tf
        import torch
        torch.set_num_threads(s.threads)
        numba.set_num_threads(min(s.threads, numba.config.NUMBA_NUM_THREADS))
        try:
            tf.config.threading.set_intra_op_parallelism_threads(s.threads)
            tf.config.threading.set_inter_op_parallelism_threads(s.threads)
        except RuntimeError:  # TF already initialized in this process
            pass
    return s


@pytest.fixture(scope="session")
def data_for():
    """data_for(spec) -> (x_train, y_train, x_test, y_test), loaded once per kind of data."""
    from common.run import datasets
    cache: dict = {}

    def get(spec):
        t = spec.training
        key = (t.standardize, t.dtype, t.evaluation, t.validation_split)
        if key not in cache:
            cache[key] = datasets(spec)
        return cache[key]
    return get


@pytest.fixture(scope="session")
def environment() -> dict:
    from common.environment import describe
    return describe(("tf", "torch"))
