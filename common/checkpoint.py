"""Cross-framework checkpoints: canonical weights in an .npz with the spec embedded."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from common import canonical
from common.config import SpecError, spec_from_dict, spec_to_dict
from common.files import atomic_write
from common.spec import Spec

FORMAT = "twinbench-checkpoint-1"


class CheckpointError(ValueError):
    """A file that is not a twinbench checkpoint, or one that does not fit the spec."""


def save(path: str | Path, spec: Spec, weights: dict[str, np.ndarray], meta: dict | None = None) -> Path:
    """Write weights (canonical layout) with the spec and `meta` (framework, accuracy...)."""
    canonical.check_weights(spec, weights)
    header = json.dumps({"format": FORMAT, "spec": spec_to_dict(spec), "meta": meta or {}})
    arrays = {f"w:{k}": np.asarray(v) for k, v in weights.items()}

    def write(f):
        buf = io.BytesIO()
        np.savez(buf, __header__=np.frombuffer(header.encode(), dtype=np.uint8), **arrays)
        f.write(buf.getvalue())
    return atomic_write(path, write)


def load(path: str | Path, spec: Spec | None = None) -> tuple[Spec, dict[str, np.ndarray], dict]:
    """Read a checkpoint; with `spec`, refuse one whose embedded spec differs."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(npz["__header__"].tobytes().decode())
            weights = {k[2:]: npz[k] for k in npz.files if k.startswith("w:")}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a twinbench checkpoint ({type(exc).__name__}: {exc})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {header.get('format')!r}, expected {FORMAT}")
    try:
        saved = spec_from_dict(header["spec"])
    except SpecError as exc:
        raise CheckpointError(f"{path}: embedded spec is invalid: {exc}") from None
    if spec is not None and saved != spec:
        diff = [k for k, v in _flat(spec_to_dict(spec)).items() if _flat(header["spec"]).get(k) != v]
        raise CheckpointError(f"{path}: saved for spec {saved.name!r}, which differs from {spec.name!r} in {diff}")
    try:
        canonical.check_weights(saved, weights, what=str(path))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    return saved, weights, header.get("meta", {})


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out
