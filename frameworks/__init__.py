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

from frameworks.base import VARIANTS, Framework, FrameworkMissing
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


def available(names: tuple[str, ...] = NAMES) -> tuple[str, ...]:
    """The named frameworks whose packages are installed here (none is imported)."""
    return tuple(name for name in names if get(name).missing() is None)


def skipped(names: tuple[str, ...] = NAMES) -> list[str]:
    """One line per named framework that is not installed here, naming the missing package."""
    return [f"{name}: skipped ({reason})" for name in names if (reason := get(name).missing())]


def describe(names: tuple[str, ...] = NAMES) -> dict:
    """The machine (common.environment.describe) plus each named framework's versions,
    devices and thread settings: the record every measured number is stored with (for a
    framework not installed here, what is missing)."""
    from common.environment import describe as machine
    env = machine()
    for name in names:
        reason = get(name).missing()
        env[name] = {"missing": reason} if reason else get(name).versions()
    return env


def configure(names: tuple[str, ...] = NAMES) -> list[str]:
    """Each named framework's `configure()` (threads, compile caches, log levels), once a
    process, before any framework's runtime starts; the messages of settings not applied."""
    return [m for name in names for m in get(name).configure()]


__all__ = ["Framework", "FrameworkMissing", "REGISTRY", "NAMES", "VARIANTS", "get", "all", "available", "skipped",
           "describe", "configure"]
