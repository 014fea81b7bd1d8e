"""Every tolerance of twinbench, in one place, each with its reason: the parity suite,
the benchmark's parity gate and `twinbench diff` all read this table.

A comparison passes entry-wise when

    |actual - expected| <= rtol * |expected| + atol * scale

where `scale` is the largest magnitude in the compared set of tensors (all the
gradients of one step, all the weights after one step, ...). The scaled atol
covers entries that are mathematically zero or much smaller than their
neighbours, whose values are pure rounding noise: the hidden bias gradient
under batch normalization (exactly 0 in exact arithmetic), cancelling sums.

Measured on this suite (the terminal summary prints each quantity's worst
ratio to its tolerance): float64 TF vs torch vs the NumPy oracle ~1e-15 on
logits/losses/gradients and <= 3e-14 (scaled) on weights over 50 steps, the
worst at Adam's sign-like first step; float32 ~1e-6 on logits and gradients,
<= ~1.5e-5 on weights over 50 steps. Each tolerance leaves 3x-100x headroom.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = {"float32": float(np.finfo(np.float32).eps),   # 1.19e-7
       "float64": float(np.finfo(np.float64).eps)}   # 2.22e-16


@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float  # times the largest magnitude of the compared set
    reason: str
    floor: float = 0.0  # absolute, for values computed from O(1) quantities that can be ~0 themselves


# LOSS_FLOOR: a cross-entropy near 0 is log(1 + tiny) computed from O(1) logits, so its
# absolute error is a few eps (2.2e-16 float64, 1.2e-7 float32) however small it is.
TOLERANCES: dict[tuple[str, str], Tol] = {
    # --- float64 ---
    ("float64", "forward"): Tol(1e-12, 1e-13, "eps 2.2e-16 x 784-term dot products (<= 784 eps ~ 2e-13 worst case)"),
    ("float64", "loss"): Tol(1e-12, 0.0, "a mean of well-conditioned terms: a few eps, 1e-12 leaves > 100x headroom",
                             floor=1e-14),  # LOSS_FLOOR
    ("float64", "gradients"): Tol(1e-11, 1e-12, "backprop chains two 784/H-term sums; rtol for cancelling entries, atol for BN's zero bias grad"),
    ("float64", "trajectory"): Tol(1e-12, 1e-13, "50 steps: per-step rounding ~1e-15 grows (Adam divides by sqrt(v)); measured <= 3e-14"),
    ("float64", "loss-trajectory"): Tol(1e-12, 0.0, "the batch loss at step k, from weights within the trajectory tolerance",
                                        floor=1e-14),  # LOSS_FLOOR
    ("float64", "state"): Tol(1e-12, 1e-13, "optimizer slots are sums/EMAs of the gradients compared above"),
    # Adagrad from a zero accumulator with epsilon outside the root (PyTorch's default):
    # the first step is lr * g / (|g| + eps), whose slope in g peaks at lr / (4 eps)
    # (1.25e5 for lr 0.05, eps 1e-7) for entries with |g| ~ eps, turning a gradient's
    # absolute rounding (~1e-17) into ~1e-12 in the weights, and again whenever an entry's
    # accumulator is still ~0; measured growth: 2e-12 at step 2, ~1e-8 at step 50.
    ("float64", "trajectory-zero-accumulator"): Tol(1e-6, 1e-7, "lr / (4 eps) amplification, repeated (see above)"),
    ("float64", "state-zero-accumulator"): Tol(1e-6, 1e-7, "sums g^2 of gradients taken at those weights"),
    ("float64", "loss-trajectory-zero-accumulator"): Tol(1e-6, 0.0, "losses at those weights"),
    # RMSprop with epsilon outside the root: v starts at 0, so the first step is
    # lr * g / (sqrt(1 - rho) |g| + eps), whose slope in g reaches lr / eps (1e4 for
    # lr 1e-3, eps 1e-7) for entries with |g| ~ eps: gradient rounding ~1e-17 -> ~1e-13.
    ("float64", "trajectory-rmsprop-outside"): Tol(1e-11, 1e-12, "lr / eps amplification in the first steps (above)"),
    ("float64", "state-rmsprop-outside"): Tol(1e-11, 1e-12, "EMAs of g^2 at those weights"),
    ("float64", "loss-trajectory-rmsprop-outside"): Tol(1e-11, 0.0, "losses at those weights", floor=1e-14),
    # --- float32 ---
    ("float32", "forward"): Tol(1e-5, 1e-5, "eps 1.2e-7 x sqrt-accumulation over 784-term dot products (~30 eps typical)"),
    ("float32", "loss"): Tol(1e-5, 0.0, "from float32 logits (forward rtol 1e-5) through exp/log: ~10-100 eps",
                             floor=1e-6),  # LOSS_FLOOR
    ("float32", "gradients"): Tol(1e-4, 2e-5, "two chained 784/H-term float32 sums and softmax/sigmoid Jacobians"),
    ("float32", "trajectory"): Tol(1e-3, 1e-4, "50 float32 steps each adding ~1e-6 relative noise that momentum/Adam integrate"),
    ("float32", "loss-trajectory"): Tol(1e-4, 0.0, "the batch loss at step k, from weights that drifted by up to ~1e-5",
                                        floor=1e-6),  # LOSS_FLOOR
    ("float32", "state"): Tol(1e-3, 1e-4, "slots integrate the float32 gradients (Adam's v squares them)"),
}
for _q in ("trajectory", "state", "loss-trajectory"):  # float32 rounding already dominates the amplification
    for _case in ("zero-accumulator", "rmsprop-outside"):
        TOLERANCES[("float32", f"{_q}-{_case}")] = TOLERANCES[("float32", _q)]

# The fast paths' self-check (torch_impl.fast): a few compiled steps against the book's steps
# on copies of one model. atol multiplies the largest *movement* of the weights (or the largest
# state entry), so a dropped or doubled update fails by orders of magnitude; rtol allows a
# fused multiply-add's different rounding of each weight.
# The benchmark's parity gate (bench/measure.py) compares a row's first few steps with the float64
# oracle the same way: storage rounding of each weight plus 1e-3 of the weights' movement.
for _dt in ("float32", "float64"):
    TOLERANCES[(_dt, "self-check")] = Tol(16 * EPS[_dt], 1e-3, "compiled vs book over a few steps: "
                                          "rounding of each weight, 1e-3 of the movement")
    TOLERANCES[(_dt, "gate")] = Tol(16 * EPS[_dt], 1e-3, "a row's first steps vs the float64 oracle: "
                                    "rounding of each weight, 1e-3 of the movement")

# The benchmark's check after timing (bench/verify.py): a row's per-epoch train loss and accuracy
# against the floor's, the same math from the same start in the same order, both float32. The first
# epoch's agree to rounding (measured <= 3.4e-6 relative, 0-1 examples of 60,000, conf1 and conf5,
# TF and PyTorch fast, 2026-12-07); later ones drift apart as float32 trajectories do (Adam's steps on
# rarely active pixels amplify it: measured 1.2e-3 relative and 12 examples at conf5's 4th epoch,
# where TF and PyTorch still agree to 1e-4 of each other). A wrong loop moves them by far more.
EPOCH_FIRST = Tol(1e-4, 0.0, "a first epoch's mean train loss, float32 vs float32: rounding (measured <= 3.4e-6)")
EPOCH_LATER = Tol(2e-2, 0.0, "later epochs' mean train loss: float32 drift (measured <= 1.2e-3 at conf5's 4th)")
EPOCH_ACCURACY = {"first": 1e-3, "later": 5e-3}  # |accuracy difference|: 60 and 300 of 60,000 examples

# The loss that Keras's train_on_batch returns comes from its float32 loss
# tracker even in float64 runs: compared at the float32 loss tolerance.
KERAS_TRACKED_LOSS = Tol(1e-5, 0.0, "Keras Mean tracker accumulates in float32 (floatx)")

# The defaults catalogue asserts that a framework default breaks float64
# parity by at least this factor over the float64 trajectory tolerance.
DEFAULT_BREAK_FACTOR = 1e3


def trajectory_quantities(spec) -> tuple[str, str, str]:
    """The tolerance keys of (weights and moving statistics, optimizer state, losses)
    along a trajectory of `spec`."""
    o = spec.optimizer
    if o.name == "adagrad" and o.initial_accumulator == 0 and o.epsilon_placement == "outside_sqrt":
        return "trajectory-zero-accumulator", "state-zero-accumulator", "loss-trajectory-zero-accumulator"
    if o.name == "rmsprop" and o.epsilon_placement == "outside_sqrt":
        return "trajectory-rmsprop-outside", "state-rmsprop-outside", "loss-trajectory-rmsprop-outside"
    return "trajectory", "state", "loss-trajectory"


def tol(dtype: str, quantity: str) -> Tol:
    """The tolerance of one quantity (forward, loss, gradients, trajectory, state) in one dtype."""
    return TOLERANCES[(dtype, quantity)]
