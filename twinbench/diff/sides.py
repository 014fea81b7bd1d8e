"""The two sides of a `twinbench diff`: `FRAMEWORK[:SPEC][@DTYPE]` parsed, and a runner per
side that steps one training run and reports every tensor after each step."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

import frameworks
from common import canonical
from common import reference as ref
from common.config import SpecError, load_spec, replace
from common.reference import layers as L
from common.spec import Spec

REFERENCE = "reference"
SIDE = re.compile(r"^(?P<fw>[\w-]+)(?::(?P<spec>[^@]+))?(?:@(?P<dtype>\w+))?$")


@dataclass(frozen=True)
class Side:
    """One side: a framework (or the float64 reference) running a spec."""

    framework: str
    spec: Spec
    text: str

    @property
    def dtype(self) -> str:
        return "float64" if self.framework == REFERENCE else self.spec.training.dtype


def parse_side(text: str, default_spec: str = "conf5") -> Side:
    """`tf:conf5@float64` -> Side; SpecError naming the bad part."""
    match = SIDE.match(text.strip())
    if not match:
        raise SpecError(f"{text!r}: expected FRAMEWORK[:SPEC][@DTYPE], e.g. tf:conf5@float64")
    fw, name, dtype = match["fw"], match["spec"] or default_spec, match["dtype"]
    if fw != REFERENCE and fw not in frameworks.NAMES:
        raise SpecError(f"{text!r}: unknown framework {fw!r}; choose from {', '.join((*frameworks.NAMES, REFERENCE))}")
    if fw != REFERENCE and frameworks.get(fw).missing():
        raise SpecError(f"{text!r}: {frameworks.get(fw).missing()}")
    spec = load_spec(name)
    if dtype is not None:
        if dtype not in ("float32", "float64"):
            raise SpecError(f"{text!r}: unknown dtype {dtype!r}; choose float32 or float64")
        if fw == REFERENCE and dtype != "float64":
            raise SpecError(f"{text!r}: the reference computes in float64 only")
        spec = replace(spec, **{"training.dtype": dtype})
    if fw == REFERENCE:
        spec = replace(spec, **{"training.dtype": "float64"})
    return Side(fw, spec, text.strip())


def check_pair(a: Side, b: Side) -> None:
    """SpecError when the two sides cannot run side by side (other shapes or batches)."""
    sa, sb = canonical.weight_shapes(a.spec), canonical.weight_shapes(b.spec)
    if sa != sb:
        raise SpecError(f"{a.text} and {b.text} have networks of different shapes: "
                        + ", ".join(f"{k} {sa.get(k)} vs {sb.get(k)}" for k in dict.fromkeys([*sa, *sb])
                                    if sa.get(k) != sb.get(k)))
    for field in ("batch_size", "seed", "shuffle", "standardize"):
        va, vb = getattr(a.spec.training, field), getattr(b.spec.training, field)
        if va != vb:
            raise SpecError(f"{a.text} and {b.text}: training.{field} differs ({va} vs {vb}), so the two runs "
                            "would not take the same batches")


class Runner:
    """One side's training run, stepped by the caller."""

    def __init__(self, side: Side, weights: dict[str, np.ndarray]):
        self.side, self.spec = side, side.spec

    def gradients(self, x, y) -> tuple[float, dict]: ...
    def step(self, x, y) -> float: ...
    def weights(self) -> dict: ...
    def state(self) -> dict: ...
    def logits(self, x) -> np.ndarray: ...
    def layer_forward(self, name, u, y) -> np.ndarray: ...
    def layer_vjp(self, name, u, g, y) -> tuple[np.ndarray, dict]: ...


class FrameworkRunner(Runner):
    """A framework's book model, from the registry."""

    def __init__(self, side: Side, weights: dict[str, np.ndarray], edit=None):
        super().__init__(side, weights)
        self.fw = frameworks.get(side.framework)
        self.impl = self.fw.book()
        self.model = self.impl.build_model(side.spec)
        self.impl.set_weights(self.model, {k: v.astype(side.dtype) for k, v in weights.items()})
        if edit is not None:  # a test double of one layer, say
            edit(self.model)
            self.fw.use_optimizer(self.model, side.spec, None)

    def gradients(self, x, y):
        return self.impl.loss_and_gradients(self.model, self.spec, x.astype(self.side.dtype), y)

    def step(self, x, y):
        return self.impl.train_step(self.model, self.spec, x.astype(self.side.dtype), y)

    def weights(self):
        return self.impl.get_weights(self.model)

    def state(self):
        return self.impl.get_optimizer_state(self.model, self.spec)

    def logits(self, x):
        return self.fw.logits(self.model, self.spec, x)

    def layer_forward(self, name, u, y):
        return self.fw.layer_forward(self.model, self.spec, name, u, y)

    def layer_vjp(self, name, u, g, y):
        return self.fw.layer_vjp(self.model, self.spec, name, u, g, y)


class ReferenceRunner(Runner):
    """The float64 NumPy oracle."""

    def __init__(self, side: Side, weights: dict[str, np.ndarray]):
        super().__init__(side, weights)
        self.w = {k: np.asarray(v, np.float64) for k, v in weights.items()}
        self.s = ref.init_state(side.spec, self.w)

    def gradients(self, x, y):
        return ref.loss_and_gradients(self.w, self.spec, x, y)

    def step(self, x, y):
        loss, self.w, self.s = ref.train_step(self.spec, self.w, self.s, x, y)
        return loss

    def weights(self):
        return dict(self.w)

    def state(self):
        return dict(self.s)

    def logits(self, x):
        return ref.forward(self.w, self.spec, x, training=False)["z2"]

    def layer_forward(self, name, u, y):
        return L.layer_forward(self.w, self.spec, name, u, y)

    def layer_vjp(self, name, u, g, y):
        return L.layer_vjp(self.w, self.spec, name, u, g, y)


def runner(side: Side, weights: dict[str, np.ndarray], edit=None) -> Runner:
    """The runner of a side, started from the canonical `weights`."""
    if side.framework == REFERENCE:
        return ReferenceRunner(side, weights)
    return FrameworkRunner(side, weights, edit)


def with_seed(spec: Spec, seed: int | None) -> Spec:
    return spec if seed is None else dataclasses.replace(spec, training=dataclasses.replace(spec.training, seed=seed))
