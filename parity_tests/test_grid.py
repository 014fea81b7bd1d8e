"""The pairwise covering design over the spec (parity_tests/design.py): the design
itself, then every row's forward pass, loss and gradients in TF, torch and the
oracle, plus three optimizer steps (weights, optimizer state, moving stats)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from parity_tests import design as D
from parity_tests import harness as H

ROWS, REQUIRED = D.pairwise()
SHORT_STEPS = 3  # every row; test_trajectories runs 50 steps on a subset
INFEASIBLE = {  # the pairs validate() rules out, written down independently
    (("output_activation", "linear"), ("loss", loss)) for loss in ("bce-logits", "bce-clipped", "cce-logits", "cce-clipped")
} | {(("output_activation", "sigmoid"), ("loss", "cce-logits")), (("output_activation", "softmax"), ("loss", "bce-logits")),
     (("batch_norm", "before_activation"), ("batch_size", 1)), (("batch_norm", "after_activation"), ("batch_size", 1))}


def row_pairs(row: dict) -> set:
    return set(itertools.combinations(list(row.items()), 2))


def test_design_covers_every_valid_pair():
    covered = set().union(*(row_pairs(r) for r in ROWS))
    missing = REQUIRED - covered
    assert not missing, f"pairs not covered: {sorted(missing)[:5]}"
    all_pairs = {((a, x), (b, y)) for a, b in itertools.combinations(D.FACTORS, 2)
                 for x in D.FACTORS[a] for y in D.FACTORS[b]}
    assert all_pairs - REQUIRED == INFEASIBLE
    assert covered & INFEASIBLE == set()
    assert all(D.is_valid(r) for r in ROWS)
    # every factor level appears; the greedy stays close to the lower bound 11 x 8 = 88
    assert all({r[f] for r in ROWS} == set(levels) for f, levels in D.FACTORS.items())
    assert 88 <= len(ROWS) <= 100, len(ROWS)


def test_design_is_deterministic():
    D.pairwise.cache_clear()
    assert D.pairwise()[0] == ROWS


def test_validity_depends_only_on_declared_factors():
    """D.pairwise evaluates validate() once per combination of VALIDITY_FACTORS:
    changing any other factor of a row never changes the verdict."""
    rng = np.random.default_rng(0)
    base = {f: v[0] for f, v in D.FACTORS.items()}
    for _ in range(300):
        row = {f: v[rng.integers(len(v))] for f, v in D.FACTORS.items()}
        reduced = {**base, **{f: row[f] for f in D.VALIDITY_FACTORS}}
        assert D.is_valid(row) == D.is_valid(reduced), row


ROW_SPECS = {H.spec_id(D.make_spec(r)): D.make_spec(r) for r in ROWS}
ALL_SPECS = ROW_SPECS


def test_row_ids_are_unique():
    assert len(ROW_SPECS) == len(ROWS)


@pytest.mark.parametrize("spec", H.params(ALL_SPECS))
def test_grid_row(spec):
    index = list(ALL_SPECS.values()).index(spec)
    cid = H.spec_id(spec)
    H.register_config(cid)
    (x, y), = H.batches(spec.training.batch_size, 1, 100 + index)
    H.check_forward_and_gradients(spec, 1000 + index, x, y, cid)
    H.run_trajectory(spec, 1000 + index, SHORT_STEPS, cid, data_seed=200 + index)
