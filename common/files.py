"""Atomic file writes: a crash never leaves a half-written result on disk."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call `write(file)` on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Pretty, strict JSON (a non-finite number becomes null: common.history.strict), written
    atomically."""
    from common.history import strict
    text = json.dumps(strict(data), indent=2, sort_keys=False, default=str, allow_nan=False)
    return atomic_write(path, lambda f: f.write(text + "\n"), "w")


def write_text(path: str | Path, text: str) -> Path:
    """Text, written atomically."""
    return atomic_write(path, lambda f: f.write(text), "w")
