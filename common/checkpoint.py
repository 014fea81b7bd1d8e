"""Cross-framework checkpoints: canonical weights (and, for resuming a run, the optimizer
state) in an .npz with the spec and the run's metadata embedded."""
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

FORMAT = "twinbench-checkpoint-2"
READS = ("twinbench-checkpoint-1", FORMAT)  # format 1: weights only


class CheckpointError(ValueError):
    """A file that is not a twinbench checkpoint, or one that does not fit the spec."""


def save(path: str | Path, spec: Spec, weights: dict[str, np.ndarray], meta: dict | None = None,
         optimizer_state: dict[str, np.ndarray] | None = None) -> Path:
    """Write weights (canonical layout) with the spec, `meta` (framework, epochs, history...)
    and optionally the optimizer state (canonical layout), atomically."""
    canonical.check_weights(spec, weights)
    if optimizer_state is not None:
        canonical.check_shapes(optimizer_state, canonical.state_shapes(spec), "optimizer state")
    from common.history import strict
    header = json.dumps({"format": FORMAT, "spec": spec_to_dict(spec), "meta": strict(meta or {}),
                         "optimizer_state": optimizer_state is not None}, allow_nan=False)
    arrays = {f"w:{k}": np.asarray(v) for k, v in weights.items()}
    arrays.update({f"o:{k}": np.asarray(v) for k, v in (optimizer_state or {}).items()})

    def write(f):
        buf = io.BytesIO()
        np.savez(buf, __header__=np.frombuffer(header.encode(), dtype=np.uint8), **arrays)
        f.write(buf.getvalue())
    return atomic_write(path, write)


def load(path: str | Path, spec: Spec | None = None) -> tuple[Spec, dict[str, np.ndarray], dict]:
    """Read a checkpoint: (spec, weights, meta); with `spec`, refuse one whose embedded spec
    differs, naming the fields. meta["optimizer_state"] holds the optimizer state, if saved."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(npz["__header__"].tobytes().decode())
            weights = {k[2:]: npz[k] for k in npz.files if k.startswith("w:")}
            state = {k[2:]: npz[k] for k in npz.files if k.startswith("o:")}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a twinbench checkpoint ({type(exc).__name__}: {exc})") from None
    if header.get("format") not in READS:
        raise CheckpointError(f"{path}: unknown checkpoint format {header.get('format')!r}, expected {FORMAT}")
    try:
        saved = spec_from_dict(header["spec"])
    except SpecError as exc:
        raise CheckpointError(f"{path}: embedded spec is invalid: {exc}") from None
    if spec is not None and saved != spec:
        raise CheckpointError(f"{path}: saved for spec {saved.name!r}, which differs from {spec.name!r} in "
                              f"{differences(saved, spec)}")
    try:
        canonical.check_weights(saved, weights, what=str(path))
        if header.get("optimizer_state"):
            canonical.check_shapes(state, canonical.state_shapes(saved), f"{path}: optimizer state")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    meta = dict(header.get("meta", {}))
    if header.get("optimizer_state"):
        meta["optimizer_state"] = state
    return saved, weights, meta


def differences(a: Spec, b: Spec) -> list[str]:
    """The dotted fields in which two specs differ, e.g. ['optimizer.learning_rate']."""
    fa, fb = _flat(spec_to_dict(a)), _flat(spec_to_dict(b))
    return [k for k in dict.fromkeys([*fa, *fb]) if fa.get(k) != fb.get(k)]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out
