"""What every framework of the registry provides (frameworks.get(name) returns one)."""
from __future__ import annotations

from types import ModuleType, SimpleNamespace

import numpy as np

from common.spec import Spec

VARIANTS = ("book", "fast")


class FrameworkMissing(RuntimeError):
    """A framework asked for is not installed here; the message names the package."""
API = ("build_model", "get_weights", "set_weights", "loss_and_gradients", "train_step", "evaluate", "fit",
       "get_optimizer_state", "set_optimizer_state", "describe_optimizer")


class Framework:
    """One framework: its implementation package and everything callers would otherwise
    branch on. Subclasses set the class attributes and the framework-specific methods."""

    name: str = ""         # "tf" | "torch": the CLI's and the result files' word for it
    title: str = ""        # for people: column titles, table headers
    package: str = ""      # the implementation package, e.g. "tf_impl"
    requires: tuple[str, ...] = ()  # the packages it needs installed, e.g. ("tensorflow", "keras")

    def __repr__(self) -> str:
        return f"<framework {self.name}: {self.package}>"

    # --- the implementation ---

    def missing(self) -> str | None:
        """One line naming a package this framework needs that cannot be imported here, or None
        (without importing it: a machine with one framework runs that one's part)."""
        import importlib.util
        for package in self.requires:
            try:
                if importlib.util.find_spec(package) is None:
                    return f"{package} is not installed"
            except ModuleNotFoundError:
                return f"{package} is not installed"
            except (ImportError, ValueError) as exc:
                return f"{package} cannot be imported ({exc})"
        return None

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
        reason = self.missing()
        if reason:
            raise FrameworkMissing(f"{self.name}: {reason}")
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

    def configure(self) -> list[str]:
        """Apply twinbench's process settings for this framework (threads, compile caches, log
        levels). Called once when a program starts (the CLI, the benchmark, each Dask worker,
        the parity suite), before the framework's runtime does; importing changes nothing.
        A setting already chosen by the user (an environment variable) stands. Returns the
        settings that could not be applied, as messages."""
        raise NotImplementedError

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

    # the framework's own GPU defaults, which pin_numerics overrides (parity_tests/gpu_defaults.py)
    GPU_DEFAULTS: dict[str, bool] = {}

    def set_gpu_numerics(self, tf32: bool, deterministic: bool) -> None:
        """TF32 matmuls and convolutions on or off; deterministic kernels (cuBLAS, cuDNN) on or off."""
        raise NotImplementedError

    # --- quirks the harnesses would otherwise branch on ---

    def logits(self, model, spec: Spec, x: np.ndarray) -> np.ndarray:
        """The output pre-activation z2 in inference mode, on the CPU, as numpy."""
        raise NotImplementedError

    def layer_forward(self, model, spec: Spec, name: str, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Layer `name`'s training-mode output for input u (common.reference.layers names the
        layers); the model's weights, moving statistics included, are left as they were."""
        raise NotImplementedError

    def layer_vjp(self, model, spec: Spec, name: str, u: np.ndarray, g, y: np.ndarray) -> tuple[np.ndarray, dict]:
        """(dL/du, {canonical weight name: dL/dweight}) of layer `name` at input u, g = dL/d(output)."""
        raise NotImplementedError

    def own_defaults(self, spec: Spec) -> Spec:
        """The spec as a port written without twinbench gets it in this framework: every default
        of common.defaults' table that applies to the spec set to this framework's own."""
        from common.defaults import own_defaults
        return own_defaults(spec, self.name)

    def reported_loss_dtype(self, dtype: str) -> str:
        """The dtype in which train_step/evaluate report the loss of a `dtype` run."""
        return dtype

    def use_optimizer(self, model, spec: Spec, make) -> None:
        """Give `model` another optimizer, `make(model)` (None: the spec's own, rebuilt)."""
        raise NotImplementedError
