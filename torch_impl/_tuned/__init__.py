"""The tuned tier of torch_impl.fast (CPU): the epoch as inductor's C++ `while_loop`, compiled
with twinbench's adjustments of inductor (inductor.py: loop bodies keep their buffers, g++ at
-O2 on two units at once, ATen's vector ISA without probes) and saved between processes
(saved.py). It rests on PyTorch internals, so it runs only on the torch versions in TESTED,
which the test suite runs; elsewhere, or with TWINBENCH_TUNED=0, the public tiers run.
bench/README.md says what it buys.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable

import torch

from common.config import step_key
from common.environment import compile_cache_dir
from common.selfcheck import check_data
from common.spec import Spec
from torch_impl import _step
from torch_impl._tuned import saved
from torch_impl._tuned.inductor import KEPT, O2, SEPARATE
from torch_impl.losses import one_hot
from torch_impl.training import as_inputs

TESTED = ("2.13.0",)  # the allow-list: torch releases whose internals this tier was written and tested for
TUNED_ENV = "TWINBENCH_TUNED"  # "0": never use the tuned tier (the public tiers only)
_said: set[str] = set()  # the releases outside the allow-list already warned about (once a process)


def switched_off() -> str | None:
    """Why the tuned tier is off ($TWINBENCH_TUNED=0), or None."""
    return f"{TUNED_ENV}=0" if os.environ.get(TUNED_ENV, "").strip() == "0" else None


def unavailable(device: str) -> str | None:
    """Why the tuned tier does not apply here, or None."""
    release = torch.__version__.split("+")[0]
    if device != "cpu":
        return "the tuned tier compiles for the CPU"
    if release not in TESTED:
        reason = f"torch {release} is not in the tuned tier's allow-list ({', '.join(TESTED)})"
        if release not in _said and not switched_off():  # once a process: the public tiers are slower here
            _said.add(release)
            warnings.warn(f"torch_impl._tuned: {reason}; the public tiers build the fast epoch (bench/README.md,"
                          f" \"Tiers\", says what the tuned tier buys)", RuntimeWarning, stacklevel=2)
        return reason
    return switched_off()


def options() -> dict:
    """Inductor's options: C++ wrapper; the batch rows come from a permutation made here, so no
    per-element bounds checks; no precompiled header (inductor builds a 141 MB one per Python
    environment, outside its cache directory, to save 1.2 s per compile) and no line tables;
    and our adjustments (inductor.py), with `cpp.vec_isa_ok` where ATen runs AVX2/AVX512."""
    chosen = {"cpp_wrapper": True, "assert_indirect_indexing": False, "cpp_cache_precompile_headers": False,
              "aot_inductor.enable_line_tables": False, KEPT: True, O2: True, SEPARATE: True}
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") and "TORCHINDUCTOR_VEC_ISA_OK" not in os.environ:
        chosen["cpp.vec_isa_ok"] = True  # else the user's choice stands, or the ISA is not one we describe
    return chosen


def build(model: torch.nn.Module, spec: Spec, n_examples: int, trace: Callable, check: Callable) -> Callable:
    """The tuned loop (torch_impl._step's loop signature): the one an earlier process saved, else
    compiled now and saved once `check(loop)` passed (the self-check), each used only then; RuntimeError
    naming each attempt's failure when none did. trace() traces the step when no module of it
    was saved."""
    cache, chosen = compile_cache_dir() / "torch-loops", options()
    steps = saved.step_module(spec, cache, trace)
    x, labels, order = check_data(spec, n_examples, 0)  # shaped like the epoch: the loop compiles for it
    example = _step.loop_args(spec, n_examples // spec.training.batch_size, as_inputs(spec, x), one_hot(spec, labels),
                              torch.as_tensor(order), _step.mutables(model))
    path = cache / f"loop_{saved.key(step_key(spec), n_examples, sorted(chosen.items()))}.bin"
    failures = []
    for attempt in saved.saved_or_compiled(steps, chosen, example, path):
        try:
            with _step.one_thread("cpu"):  # PT: a saved loop's guards hold the thread count it runs with
                loop, keep = attempt()
            check(loop)
            keep()  # saved for later processes only once it passed
            return loop
        except Exception as exc:  # noqa: BLE001  a stale or broken saved loop: compile it now
            failures.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    raise RuntimeError("; ".join(failures))
