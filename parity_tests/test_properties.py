"""Property-based specs (Hypothesis): random valid specs, every enum value and numbers drawn
inside the validated ranges, TF vs PyTorch vs the float64 oracle for a few steps.

The ordinary run draws a small, derandomised set (reproducible in CI); set
TWINBENCH_HYPOTHESIS=thorough for a larger search. A failure shrinks to the smallest spec
and prints it as TOML a user can load (`twinbench config show that.toml`).

Numbers are drawn inside the validated ranges, narrowed where a value would make a few
float32 steps ill-conditioned for reasons the catalogue already documents (a learning rate
that makes the loss explode, a zero Adagrad accumulator with a tiny epsilon): the narrower
ranges are in WELL_CONDITIONED, each with its reason.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import typing

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from common import spec as S
from common.config import SpecError, to_toml, validate

from parity_tests import harness as H

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="twinbench-hypothesis-"))  # nothing written into the repository
settings.register_profile("ci", max_examples=8, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=300, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("TWINBENCH_HYPOTHESIS", "ci")

WELL_CONDITIONED = {  # dotted field -> (low, high): inside the validated range, away from blow-ups
    "learning_rate": (1e-4, 0.02),         # larger rates make 3 float32 steps chaotic (tanh saturates)
    "epsilon": (1e-7, 1e-2),               # optimizer epsilons: tinier ones amplify rounding (catalogue)
    "initial_accumulator": (0.01, 1.0),    # 0 with epsilon outside the root: lr / (4 eps) amplification
    "momentum": (0.0, 0.95),
    "rho": (0.5, 0.999), "beta_1": (0.5, 0.99), "beta_2": (0.9, 0.9999),
    "leaky_relu_slope": (0.0, 1.0),
    "low": (-0.3, -0.01), "high": (0.01, 0.3), "value": (-0.2, 0.2),
    "hidden_units": (2, 24), "batch_size": (2, 16),
    "network.batch_norm.epsilon": (1e-4, 1.0), "loss.epsilon": (1e-7, 0.2),
}
# not drawn: fixed by validation (10 outputs), or not part of a step (common/fields.py UNPROBED); the
# data stay standardized: raw 0..255 pixels with these rates saturate the network in one step
FIXED = {"output_units": 10, "epochs": 1, "k_folds": 0, "standardize": True, "input_divisor": 1.0, "input_mean": 0.0,
         "input_std": 1.0}


def _strategy(cls, prefix: str = ""):
    """A strategy of `cls` (a spec dataclass) from its fields' types and validated ranges."""
    hints, kwargs = typing.get_type_hints(cls), {}
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        if f.name in FIXED:
            kwargs[f.name] = st.just(FIXED[f.name])
            continue
        if tp is S.Network:  # the chapter MLP's short form (the convnets' stacks are not drawn here)
            kwargs[f.name] = _strategy(S.ChapterMLP, f"{key}.").map(S.ChapterMLP.network)
        elif typing.get_origin(tp) is typing.Union:  # the optimizer: any of them
            kwargs[f.name] = st.one_of(*[_strategy(o, f"{key}.") for o in S.OPTIMIZERS.values()])
        elif dataclasses.is_dataclass(tp):
            kwargs[f.name] = _strategy(tp, f"{key}.")
        elif typing.get_origin(tp) is typing.Literal:
            kwargs[f.name] = st.sampled_from(typing.get_args(tp))
        elif tp is bool:
            kwargs[f.name] = st.booleans()
        elif tp in (int, float):
            lo, hi = WELL_CONDITIONED.get(key) or WELL_CONDITIONED.get(f.name) or f.metadata.get("range", (0, 1))
            kwargs[f.name] = st.integers(lo, hi) if tp is int else st.floats(lo, hi, allow_nan=False,
                                                                            exclude_min=f.metadata.get("open", False))
    return st.builds(cls, **kwargs)


# A constant (or zero) kernel makes every unit of a layer the same: gradients that are zero in exact
# arithmetic are left, rounding noise that Adam, RMSprop and Adagrad turn into steps of +-lr and that
# ties the outputs (argmax then picks by noise). Hypothesis found both; kernels are drawn from the others.
RANDOM_KERNELS = ("uniform", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform")


def _clean(spec: S.Spec) -> S.Spec:
    """Initializer fields that do not apply to the drawn name back at their defaults (the spec refuses them);
    a constant or zero kernel redrawn as uniform (RANDOM_KERNELS)."""
    def fix(init: S.Initializer) -> S.Initializer:
        keep = {f.name: getattr(init, f.name) for f in dataclasses.fields(S.Initializer)
                if not f.metadata.get("applies") or init.name in f.metadata["applies"]}
        return S.Initializer(**keep)
    net = spec.network.mlp
    net = dataclasses.replace(net, **{n: fix(getattr(net, n)) for n in
                                      ("hidden_kernel_init", "hidden_bias_init", "output_kernel_init", "output_bias_init")})
    for n in ("hidden_kernel_init", "output_kernel_init"):
        if getattr(net, n).name not in RANDOM_KERNELS:
            net = dataclasses.replace(net, **{n: S.Initializer("uniform", -0.1, 0.1)})
    return dataclasses.replace(spec, network=net.network(), name="hypothesis", description="")


SPECS = _strategy(S.Spec).map(_clean)


@settings(settings.get_profile(PROFILE))
@given(spec=SPECS, seed=st.integers(0, 2**16))
def test_random_spec_agrees_in_both_frameworks(spec: S.Spec, seed: int):
    try:
        validate(spec)
    except SpecError:
        assume(False)
    note(f"the spec as TOML:\n{to_toml(spec)}")
    cid = f"hypothesis-{H.spec_id(spec)}"
    H.register_config(cid)
    try:
        (x, y), = H.batches(spec.training.batch_size, 1, seed)
        H.check_forward_and_gradients(spec, seed, x, y, cid)
        H.run_trajectory(spec, seed, 3, cid, data_seed=seed)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n\nthe spec as TOML (save it and run `twinbench diff tf:FILE torch:FILE`):\n"
                             f"{to_toml(spec)}") from None


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
