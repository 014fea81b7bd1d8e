"""CUDA: the compiled step replayed from CUDA graphs of GRAPH_STEPS steps, the batch index
advanced on the device, so one launch runs GRAPH_STEPS steps instead of one kernel each
(PyTorch only: TF's XLA loop runs on the GPU as it is, so this private module stands on one
side of the mirror).

Everything but the capture itself is plain tensor code, so it runs on the CPU too: there a
"graph" records the function and replays it by calling it (`_Recorded`), which is how the
test suite exercises this loop (indexing, the static buffers, grad mode) without a GPU.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

GRAPH_STEPS = 64  # steps captured per graph (the rest of an epoch replays a 1-step graph)


class _Recorded:
    """A CPU stand-in for torch.cuda.CUDAGraph: replay() calls the recorded function."""

    def __init__(self, fn: Callable[[], None]):
        self.replay = fn


def _capture(fn: Callable[[], None], device: str):
    """fn's kernels recorded into a CUDA graph (not run); `.replay()` runs them."""
    if device != "cuda":
        return _Recorded(fn)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g


@contextlib.contextmanager
def _side_stream(device: str) -> Iterator[None]:
    """PT: warm-up (compiling, autotuning, lazy init) on a side stream before capturing, as
    torch.cuda.graphs asks; nothing to do on the CPU."""
    if device != "cuda":
        yield
        return
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream().wait_stream(side)


def graphs_loop(one_step: Callable, n_c: int, device: str) -> Callable:
    """A loop (torch_impl._step's signature) replaying one_step from graphs of GRAPH_STEPS and
    of 1 step. Captured once per set of data and model tensor addresses (the scalar tables,
    the last n_c inputs, and the order are copied into captured buffers before each epoch)."""
    graphs: dict[tuple, tuple] = {}

    def steps(n: int, i, static, mut) -> Callable[[], None]:
        def record():
            for _ in range(n):
                one_step(i, *static, mut)
                i.add_(1)
        return record

    def build(order2d, x, t, loss_sum, correct, mut: list, tables: list) -> tuple:
        i = torch.zeros((), dtype=torch.int64, device=x.device)
        static = (order2d.clone(), x, t, loss_sum.clone(), correct.clone())
        mut = [*mut, *(table.clone() for table in tables)]  # the captured tables
        with _side_stream(device):  # on copies of everything a step writes: the model is not touched
            for _ in range(2):
                one_step(i.zero_(), *static[:3], loss_sum.clone(), correct.clone(), [m.clone() for m in mut])
        many = max(1, min(GRAPH_STEPS, len(order2d)))
        return i, static, mut[len(mut) - n_c:], many, _capture(steps(many, i, static, mut), device), \
            _capture(steps(1, i, static, mut), device)

    def loop(n_steps, order2d, x, t, loss_sum, correct, *state) -> None:
        mut, tables = list(state[:len(state) - n_c]), list(state[len(state) - n_c:])
        key = tuple(a.data_ptr() for a in (x, t, *mut))
        if key not in graphs:
            graphs[key] = build(order2d, x, t, loss_sum, correct, mut, tables)
        i, static, static_tables, many, g_many, g_one = graphs[key]
        for dst, src in zip((static[0], static[3], static[4], *static_tables), (order2d, loss_sum, correct, *tables)):
            dst.copy_(src)
        i.zero_()
        n = int(n_steps)
        for _ in range(n // many):
            g_many.replay()
        for _ in range(n % many):
            g_one.replay()
        loss_sum.copy_(static[3])
        correct.copy_(static[4])
    return loop
