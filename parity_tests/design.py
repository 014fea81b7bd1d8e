"""The covering design of the grid tests: factors of the spec, a deterministic
greedy all-pairs (pairwise) generator, and the factor-level -> Spec mapping.

Invalid combinations are left out by construction: a row is a candidate only
if common.config.validate accepts its spec, and a pair of levels is required
only if some valid row holds it.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

from common.config import SpecError, validate
from common.spec import SGD, Adadelta, Adagrad, Adam, Initializer, RMSprop, Spec, Training
from parity_tests.harness import replace

OPTIMIZERS = {
    "sgd": SGD(learning_rate=0.05),
    # momentum: heavy-ball SGD is stable for lr * lambda < 2 (1 + m); a linear output on
    # 784 Gaussian pixels at batch 1 has lambda ~ 784, so lr 0.002 keeps 50 steps finite
    "sgd-momentum": SGD(learning_rate=0.002, momentum=0.9),
    "sgd-nesterov": SGD(learning_rate=0.002, momentum=0.9, nesterov=True),
    "adagrad-inside": Adagrad(learning_rate=0.05),
    # initial accumulator 0.1: from 0 the first step lr*g/(|g|+eps) is ill-conditioned
    # (test_trajectories.test_adagrad_zero_accumulator_amplifies_rounding)
    "adagrad-outside": Adagrad(learning_rate=0.05, epsilon_placement="outside_sqrt"),
    "rmsprop-inside": RMSprop(learning_rate=0.001),
    "rmsprop-outside": RMSprop(learning_rate=0.001, epsilon_placement="outside_sqrt"),
    "rmsprop-centered-inside": RMSprop(learning_rate=0.001, centered=True),
    "rmsprop-centered-outside": RMSprop(learning_rate=0.001, centered=True, epsilon_placement="outside_sqrt"),
    "adam-keras": Adam(learning_rate=0.001),
    "adam-paper": Adam(learning_rate=0.001, epsilon_convention="paper"),
}
# every optimizer form, for the own-optimizer runs (test_own_optimizers); Adadelta (issue 31) is not
# a level of the grid below, whose rows stay those drawn before it; its settings are off both
# frameworks' defaults (Keras lr 0.001, rho 0.95, eps 1e-7; PyTorch lr 1.0, rho 0.9, eps 1e-6)
FORMS = {**OPTIMIZERS, "adadelta": Adadelta(learning_rate=0.5, rho=0.85, epsilon=1e-5)}
INITIALIZERS = {  # kernels of both layers (biases zeros unless said)
    "uniform": (Initializer("uniform", -0.1, 0.1),) * 2,
    "glorot_uniform": (Initializer("glorot_uniform"),) * 2,
    "glorot_normal": (Initializer("glorot_normal"),) * 2,
    "glorot_normal-untruncated": (Initializer("glorot_normal", truncated=False),) * 2,
    "he_normal": (Initializer("he_normal"), Initializer("glorot_uniform")),
    "he_normal-untruncated": (Initializer("he_normal", truncated=False), Initializer("glorot_uniform")),
    "he_uniform": (Initializer("he_uniform"), Initializer("glorot_uniform")),
    "he_uniform+constant-bias": (Initializer("he_uniform"), Initializer("glorot_uniform")),
}
LOSSES = {"mse": ("mse", "logits"), "bce-logits": ("binary_crossentropy", "logits"),
          "bce-clipped": ("binary_crossentropy", "clipped"),
          "cce-logits": ("categorical_crossentropy", "logits"),
          "cce-clipped": ("categorical_crossentropy", "clipped")}
FACTORS: dict[str, tuple] = {
    "hidden_activation": ("tanh", "sigmoid", "relu", "leaky_relu"),
    "output_activation": ("sigmoid", "softmax", "linear"),
    "loss": tuple(LOSSES),
    "batch_norm": ("none", "before_activation", "after_activation"),
    "initializer": tuple(INITIALIZERS),
    "optimizer": tuple(OPTIMIZERS),
    "batch_size": (1, 64),
    "dtype": ("float32", "float64"),
}
# the only factors common.config.validate reads (checked by test_grid)
VALIDITY_FACTORS = ("output_activation", "loss", "batch_norm", "batch_size")
BASE = Spec(name="grid", training=Training(batch_size=64, seed=3))


def make_spec(row: dict) -> Spec:
    """The spec of one design row (factor -> level)."""
    hk, ok = INITIALIZERS[row["initializer"]]
    bias = Initializer("constant", value=0.05) if row["initializer"].endswith("constant-bias") else Initializer("zeros")
    loss, formula = LOSSES[row["loss"]]
    return replace(BASE, **{
        "network.hidden_activation": row["hidden_activation"], "network.leaky_relu_slope": 0.2,
        "network.output_activation": row["output_activation"],
        "network.batch_norm.mode": row["batch_norm"], "network.hidden_kernel_init": hk,
        "network.output_kernel_init": ok, "network.hidden_bias_init": bias, "network.output_bias_init": bias,
        "loss.name": loss, "loss.formula": formula, "optimizer": OPTIMIZERS[row["optimizer"]],
        "training.batch_size": row["batch_size"], "training.dtype": row["dtype"]})


def is_valid(row: dict) -> bool:
    try:
        validate(make_spec(row))
        return True
    except SpecError:
        return False


@functools.cache
def pairwise() -> tuple[list[dict], set]:
    """(rows, required pairs): greedy all-pairs over the valid rows.

    Candidates are all valid rows of the full product; each round takes the
    candidate covering most uncovered pairs; ties go to the row whose levels
    are least used so far, then to the first in product order: deterministic."""
    names = list(FACTORS)
    levels = [FACTORS[n] for n in names]
    all_rows = np.array(list(itertools.product(*[range(len(v)) for v in levels])), dtype=np.int16)
    ok = _validity(names, levels, all_rows)
    rows = all_rows[ok]
    pairs = list(itertools.combinations(range(len(names)), 2))
    offset = np.cumsum([0] + [len(levels[i]) * len(levels[j]) for i, j in pairs])
    ids = np.stack([offset[k] + rows[:, i] * len(levels[j]) + rows[:, j] for k, (i, j) in enumerate(pairs)], 1)
    needed = np.zeros(offset[-1], dtype=bool)
    needed[np.unique(ids)] = True  # a pair is required iff some valid row holds it
    uncovered, design = needed.copy(), []
    used = [np.zeros(len(v), dtype=np.int64) for v in levels]  # how often each level is in the design
    while uncovered.any():
        balance = sum(used[k][rows[:, k]] for k in range(len(names)))
        best = int(np.argmax(uncovered[ids].sum(1) * 10_000 - balance))
        uncovered[ids[best]] = False
        for k in range(len(names)):
            used[k][rows[best, k]] += 1
        design.append({n: levels[k][rows[best, k]] for k, n in enumerate(names)})
    required = {((names[i], levels[i][a]), (names[j], levels[j][b]))
                for k, (i, j) in enumerate(pairs) for a in range(len(levels[i])) for b in range(len(levels[j]))
                if needed[offset[k] + a * len(levels[j]) + b]}
    return design, required


def _validity(names: list[str], levels: list[tuple], rows: np.ndarray) -> np.ndarray:
    """validate() of every row, evaluated once per combination of the factors it
    reads (VALIDITY_FACTORS; test_grid checks that no other factor matters)."""
    cols = [names.index(n) for n in VALIDITY_FACTORS]
    base = {n: v[0] for n, v in zip(names, levels)}
    sizes = [len(levels[c]) for c in cols]
    table = np.zeros(sizes, dtype=bool)
    for combo in itertools.product(*[range(s) for s in sizes]):
        table[combo] = is_valid({**base, **{names[c]: levels[c][i] for c, i in zip(cols, combo)}})
    return table[tuple(rows[:, c] for c in cols)]
