"""The framework registry: one small class per framework, the only place that maps
"tf" / "torch" to their implementation packages and to their quirks.

    import frameworks
    fw = frameworks.get("torch")
    model = fw.book().build_model(spec)
    fw.synchronize("cuda")

The CLI, the parity suite, the benchmark and the side-by-side reader all go
through it; none of them branches on a framework's name. Importing this package
imports neither TensorFlow nor PyTorch.
"""
from __future__ import annotations

from frameworks.base import VARIANTS, Framework
from frameworks.tf_framework import TensorFlow
from frameworks.torch_framework import PyTorch

REGISTRY: dict[str, Framework] = {fw.name: fw for fw in (TensorFlow(), PyTorch())}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> Framework:
    """The framework called `name` ('tf' or 'torch'); ValueError naming the choices otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"framework: expected one of {', '.join(NAMES)}, got {name!r}") from None


def all() -> list[Framework]:  # noqa: A001 - the registry's natural name
    """Every registered framework, in registry order."""
    return list(REGISTRY.values())


def describe(names: tuple[str, ...] = NAMES) -> dict:
    """The machine (common.environment.describe) plus each named framework's versions,
    devices and thread settings: the record every measured number is stored with."""
    from common.environment import describe as machine
    env = machine()
    for name in names:
        env[name] = get(name).versions()
    return env


def load_fast(names: tuple[str, ...] = NAMES) -> None:
    """Import each named framework's fast variant now, before any framework's runtime starts:
    what a fast variant sets at import (TF's intra-op threads, tf_impl.compiled) is read then."""
    for name in names:
        get(name).fast()


__all__ = ["Framework", "REGISTRY", "NAMES", "VARIANTS", "get", "all", "describe", "load_fast"]
