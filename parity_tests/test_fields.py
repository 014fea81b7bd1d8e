"""Every spec value provably reaches both frameworks. For each leaf field of the spec (walked
from common.spec by parity_tests/fields.py, so a field added later is covered without editing
this file), a probe spec whose value differs from the spec default and from both frameworks'
installed defaults: forward, loss, every gradient and three optimizer steps (weights, optimizer
state, batch-norm statistics) of both frameworks against the float64 oracle; an initializer
field is checked on the weights each framework draws itself. Each probe first shows that it is
sensitive: the oracle with the field at its default gives results beyond tolerance, so a
framework that ignored the field would fail here, naming it."""
from __future__ import annotations


import keras
import numpy as np
import pytest
import torch

from common import reference as ref
from common.compare import compare_sets
from common.config import replace
from common.tolerances import tol
from parity_tests import fields as F
from common.masks import step_masks
from parity_tests import harness as H
from parity_tests.harness.models import BUILD_SEED
from parity_tests.distributions import problems

PROBES = F.probes()
STEPS, SEED = 3, 5
INIT_UNITS = 1000  # hidden units for an initializer probe: enough samples in every hidden tensor


def test_every_leaf_field_is_probed_or_listed():
    names = [n for n, _, _ in F.leaves()]
    probed = {p.field for p in PROBES}
    missing = [n for n in names if n not in probed and n not in F.UNPROBED]
    assert not missing, f"spec fields neither probed nor listed in parity_tests/fields.py UNPROBED: {missing}"
    stale = [n for n in F.UNPROBED if n not in names]
    assert not stale, f"UNPROBED names fields the spec does not have: {stale}"


def test_probe_values_avoid_the_installed_defaults():
    """FRAMEWORK_DEFAULTS holds what keras and torch actually default to (read here)."""
    adam, rms, ada = (c([torch.nn.Parameter(torch.zeros(1))]).defaults
                      for c in (torch.optim.Adam, torch.optim.RMSprop, torch.optim.Adagrad))
    installed = {"network.leaky_relu_slope": {keras.layers.LeakyReLU().negative_slope,
                                              torch.nn.LeakyReLU().negative_slope},
                 "network.batch_norm.momentum": {keras.layers.BatchNormalization().momentum,
                                                 1 - torch.nn.BatchNorm1d(1).momentum},
                 "network.batch_norm.epsilon": {keras.layers.BatchNormalization().epsilon, torch.nn.BatchNorm1d(1).eps},
                 "optimizer.epsilon": {keras.optimizers.Adam().epsilon, adam["eps"], rms["eps"], ada["eps"]},
                 "optimizer.rho": {keras.optimizers.RMSprop().rho, rms["alpha"]},
                 "optimizer.initial_accumulator": {keras.optimizers.Adagrad().initial_accumulator_value,
                                                   ada["initial_accumulator_value"]},
                 "optimizer.beta_1": {keras.optimizers.Adam().beta_1, adam["betas"][0]},
                 "optimizer.beta_2": {keras.optimizers.Adam().beta_2, adam["betas"][1]}}
    for field, values in installed.items():
        assert {round(float(v), 12) for v in values} <= {round(v, 12) for v in F.FRAMEWORK_DEFAULTS[field]}, field
    for p in PROBES:  # every field is probed off the defaults (a choice may be probed at its default as well)
        assert p.value not in F.FRAMEWORK_DEFAULTS.get(F._plain(p.field), set())
    off = {p.field for p in PROBES if p.value != F.default_of(p.field)}
    assert off == {p.field for p in PROBES}, f"probed only at the default: {sorted({p.field for p in PROBES} - off)}"


def _oracle(spec, x, y) -> dict:
    """What the oracle computes from the probe's start: logits, loss, gradients, three steps."""
    w = H.canonical_weights(spec, SEED)
    out = {"logits": ref.forward(w, spec, x, training=False)["z2"]}
    out["loss"], out["grads"] = ref.loss_and_gradients(w, spec, x, y, step_masks(spec, BUILD_SEED, 0, len(x)))
    rw, rs = {k: v.astype(np.float64) for k, v in w.items()}, ref.init_state(spec, w)
    for k, (bx, by) in enumerate(H.batches(spec.training.batch_size, STEPS, SEED)):  # masks: a stack's dropout
        _, rw, rs = ref.train_step(spec, rw, rs, bx, by, step_masks(spec, BUILD_SEED, k, len(bx)))
    out["weights"], out["state"] = rw, {k: v for k, v in rs.items() if k != "step"}
    return out


def _sensitivity(spec, default_spec) -> float:
    """How far (in tolerance ratios) the oracle moves when the field goes back to its default."""
    (x, y), = H.batches(spec.training.batch_size, 1, SEED + 1)
    a, b = _oracle(spec, x, y), _oracle(default_spec, x, y)
    worst = 0.0
    for key in a:
        va, vb = a[key], b[key]
        va, vb = (va, vb) if isinstance(va, dict) else ({"v": va}, {"v": vb})
        if sorted(va) != sorted(vb) or any(np.shape(va[k]) != np.shape(vb[k]) for k in va):
            return float("inf")  # other tensors altogether
        worst = max(worst, compare_sets(va, vb, tol("float64", "trajectory"))[0].ratio)
    return worst


def _default_spec(probe: F.Probe):
    """The probe's spec with the probed field back at the spec's default (other fields kept); for
    a probe of the default itself, at the first other value."""
    if probe.value == F.default_of(probe.field) and probe.field != "training.dtype":
        other = next(p for p in PROBES if p.field == probe.field and p.value != probe.value)
        return replace(probe.spec, **{F._plain(probe.field): other.value})
    if probe.field == "optimizer.name":
        return replace(probe.spec, optimizer=type(F.BASE.optimizer)())
    if probe.field.endswith("_init.name"):
        return replace(probe.spec, **{probe.field.rsplit(".", 1)[0]: F.default_of(probe.field.rsplit(".", 1)[0])})
    if probe.field == "training.dtype":
        return replace(probe.spec, **{"training.dtype": "float32"})
    return replace(probe.spec, **{F._plain(probe.field): F.default_of(probe.field)})


def _initializer(probe: F.Probe) -> str | None:
    """The initializer a probe is about (network.<x>_init), or None."""
    parts = probe.field.split(".")
    return parts[1] if len(parts) > 2 and parts[1].endswith("_init") else None


TENSOR = {"hidden_kernel_init": "hidden/kernel", "hidden_bias_init": "hidden/bias",
          "output_kernel_init": "output/kernel", "output_bias_init": "output/bias"}


@pytest.mark.parametrize("probe", [pytest.param(p, id=p.id) for p in PROBES])
def test_field_reaches_both_frameworks(probe: F.Probe):
    what = f"field {probe.field} = {probe.value!r}"
    H.register_config(f"field-{probe.id}")
    init = _initializer(probe)
    if init:
        _check_initializer(probe, init, what)
        return
    if probe.field != "training.dtype":  # the dtype probe runs float64 against the float32 default
        sensitivity = _sensitivity(probe.spec, _default_spec(probe))
        assert sensitivity > 10, f"{what}: not a sensitive probe (the oracle moves {sensitivity:.3g} tolerances)"
    (x, y), = H.batches(probe.spec.training.batch_size, 1, SEED + 1)
    H.check_forward_and_gradients(probe.spec, SEED, x, y, what)
    H.run_trajectory(probe.spec, SEED, STEPS, what, data_seed=SEED)


def _check_initializer(probe: F.Probe, init_name: str, what: str) -> None:
    """The frameworks' own draws follow the probed initializer; a draw with the field at its
    default would not (so ignoring the field fails here)."""
    spec = replace(probe.spec, **{"network.hidden_units": INIT_UNITS})
    init, tensor = getattr(spec.network, init_name), TENSOR[init_name]
    default_init = getattr(replace(_default_spec(probe), **{"network.hidden_units": INIT_UNITS}).network, init_name)
    decoy = ref.init_weights(replace(spec, **{f"network.{init_name}": default_init}), SEED)[tensor]
    if not problems(init, decoy):
        pytest.fail(f"{what}: not a sensitive probe: a {tensor} drawn with the default {default_init} passes "
                    f"the checks of {init}")
    for fw in H.FRAMEWORKS:
        drawn = H.impl(fw).get_weights(H.impl(fw).build_model(spec, seed=SEED))[tensor]
        found = problems(init, drawn)
        assert not found, f"{what}: {fw}'s {tensor} does not follow {init}: {'; '.join(found)}"
