"""What every framework of the registry provides (frameworks.get(name) returns one)."""
from __future__ import annotations

from types import ModuleType, SimpleNamespace

import numpy as np

from common.spec import Spec

VARIANTS = ("book", "fast")
API = ("build_model", "get_weights", "set_weights", "loss_and_gradients", "train_step", "evaluate", "fit",
       "get_optimizer_state", "set_optimizer_state")


class Framework:
    """One framework: its implementation package and everything callers would otherwise
    branch on. Subclasses set the class attributes and the framework-specific methods."""

    name: str = ""         # "tf" | "torch": the CLI's and the result files' word for it
    title: str = ""        # for people: column titles, table headers
    package: str = ""      # the implementation package, e.g. "tf_impl"

    def __repr__(self) -> str:
        return f"<framework {self.name}: {self.package}>"

    # --- the implementation ---

    def book(self) -> ModuleType:
        """The implementation package (the book variant)."""
        raise NotImplementedError

    def fast(self) -> ModuleType:
        """The fast variant's module (`<package>.fast`)."""
        raise NotImplementedError

    def variant(self, variant: str) -> SimpleNamespace:
        """The functions of API for `variant`: the fast module's own where it has them
        (its `fit`), the book's for the rest."""
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")
        book = self.book()
        module = book if variant == "book" else self.fast()
        return SimpleNamespace(module=module.__name__, variant=variant,
                               **{n: getattr(module, n, None) or getattr(book, n) for n in API})

    # --- devices ---

    def gpu_available(self) -> bool:
        raise NotImplementedError

    def device_unavailable(self, device: str) -> str | None:
        """One line saying why this framework cannot use `device` here, or None."""
        if device not in ("cpu", "cuda"):
            return f"device: expected 'cpu' or 'cuda', got {device!r}"
        if device == "cuda" and not self.gpu_available():
            return f"{self.title} sees no GPU"
        return None

    def synchronize(self, device: str) -> None:
        """Wait for the device's queued work (a no-op on the CPU)."""

    # --- environment and numerics ---

    def versions(self) -> dict:
        """Versions, devices and threads in force: recorded with every measurement."""
        raise NotImplementedError

    def threads(self) -> dict:
        raise NotImplementedError

    def set_threads(self, n: int) -> str | None:
        """Use n intra-op (and inter-op) threads; a message if the runtime refused."""
        raise NotImplementedError

    def pin_numerics(self) -> list[str]:
        """Reproducible arithmetic for parity runs (one thread, no TF32); settings that could
        not be applied, as messages."""
        raise NotImplementedError

    def numerics(self) -> dict:
        """The numeric settings in force, as the framework reports them."""
        raise NotImplementedError

    # --- quirks the harnesses would otherwise branch on ---

    def logits(self, model, spec: Spec, x: np.ndarray) -> np.ndarray:
        """The output pre-activation z2 in inference mode, on the CPU, as numpy."""
        raise NotImplementedError

    def reported_loss_dtype(self, dtype: str) -> str:
        """The dtype in which train_step/evaluate report the loss of a `dtype` run."""
        return dtype

    def use_optimizer(self, model, spec: Spec, make) -> None:
        """Give `model` another optimizer, `make(model)` (None: the spec's own, rebuilt)."""
        raise NotImplementedError
