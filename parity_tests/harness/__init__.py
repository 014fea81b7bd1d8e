"""Shared machinery of the parity suite, in small modules with no per-framework branch
(framework quirks come from the registry, `frameworks`):

    specs       dotted replacement, readable ids, pytest params
    data        the real MNIST pool and Gaussian pixels, seeded batches
    checks      assertions through the comparison core (common.compare), session counters
    models      both frameworks built from the same canonical weights; forward and gradients
    trajectory  K train_step calls in both frameworks and the oracle; runs with other optimizers

Imported as `parity_tests.harness` (conventionally `H`) everywhere, so the counters are
one per session.
"""
from common.reference import start_weights as canonical_weights
from parity_tests.harness.checks import (CONFIGS, STATS, WORST, assert_close, assert_equal, check_reported_losses,
                                         register_config, rel_diff, scale_of, three_way, update_diff)
from parity_tests.harness.data import batches, data_pool, gaussian_pool
from parity_tests.harness.models import (FRAMEWORKS, build_pair, check_forward_and_gradients, devices,
                                         frameworks_on, impl, kink_margin, logits)
from parity_tests.harness.specs import params, replace, spec_id, with_dtype
from parity_tests.harness.trajectory import GAUGE, framework_run, ref_epoch, ref_run, run_trajectory, split

__all__ = ["CONFIGS", "FRAMEWORKS", "GAUGE", "STATS", "WORST", "assert_close", "assert_equal", "batches",
           "build_pair", "canonical_weights", "check_forward_and_gradients", "check_reported_losses", "devices",
           "frameworks_on", "kink_margin",
           "data_pool", "framework_run", "gaussian_pool", "impl", "logits", "params", "ref_run",
           "ref_epoch", "register_config", "rel_diff", "replace", "run_trajectory", "scale_of", "spec_id", "split", "three_way",
           "update_diff", "with_dtype"]
