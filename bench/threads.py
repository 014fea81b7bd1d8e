"""The one thread policy of the rows that are compared: applied before any framework's runtime
starts (`twinbench bench` and each start-up process), stated in words with every result, and
read back from each part of a row after it ran."""
from __future__ import annotations

import os

import frameworks
from bench.matrix import Row, Settings
from common.environment import usable_cores


def policy(settings: Settings) -> str:
    """The one thread policy of the rows compared, in words (recorded with every row)."""
    n = settings.threads
    return (f"{n} intra-op thread{'s' if n != 1 else ''} in every framework and the JAX peer; the C floor "
            f"computes on 1; PyTorch's fast loop steps on 1")


def apply_policy(settings: Settings, used: tuple[str, ...]) -> list[str]:
    """Before any framework's runtime starts: each used framework's configure() and `threads`
    intra-op (and inter-op) threads; one thread for Eigen's products in the JAX peer under a
    1-thread policy (XLA_FLAGS, unless already set). The settings not applied, as messages."""
    from bench.floor_jax import EIGEN_FLAG
    if settings.threads == 1 and EIGEN_FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {EIGEN_FLAG}=false".strip()
    messages = frameworks.configure(used)
    for name in frameworks.available(used):
        said = frameworks.get(name).set_threads(settings.threads)
        messages += [f"{name}: {said}; its threads stay as recorded"] if said else []
    return messages


def threads_in_force(row: Row) -> dict:
    """The threads each part of the row computes with, as read back from it: every installed
    framework's intra-op and inter-op threads (where TensorFlow reports 0, the value that applies),
    PyTorch's fast loop's own (one), the C floor's (one), and the cores this process may use."""
    out = {name: frameworks.get(name).threads() for name in frameworks.available()}
    if row.framework == "torch" and row.variant == "fast" and row.device == "cpu":
        out["torch"]["loop_threads"] = 1  # torch_impl._step.one_thread: the compiled loop's steps
    if row.is_floor and row.device == "cpu":
        out["floor"] = {"threads": 1}
    if row.is_peer:
        from bench import floor_jax
        out["jax"] = floor_jax.threads()
    return {**out, "cpu_count": os.cpu_count(), "usable_cores": usable_cores()}
