"""The book's step traced once into a graph of aten ops (make_fx), for torch_impl.compiled's
epochs, and the loop written once around it (PyTorch only: TF traces its step inside
`tf.function`, so this private module stands on one side of the mirror).

The step is the book's: forward, SpecLoss, autograd and the book optimizer's own step
(torch_impl._optim.step: torch.optim's class, or the spec rule), applied in place to the
model's parameters, buffers and optimizer state. No update formula lives here.
"""
from __future__ import annotations

import builtins
import contextlib
import types
from typing import Callable, Iterator

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from common.spec import Spec
from common.tiers import Unmet
from torch_impl.losses import SpecLoss
from torch_impl import _optim
from torch_impl.optimizers import _step_scalars

aten = torch.ops.aten


def mutables(model: torch.nn.Module) -> list[torch.Tensor]:
    """Everything a step updates in place: parameters, buffers and the optimizer's state
    (torch_impl._optim.state_tensors; the spec rule's step count last)."""
    params = [p for _, p in model.named_parameters()]
    return [p.detach() for p in params] + list(model.buffers()) + _optim.state_tensors(model)


def scalar_names(spec: Spec) -> list[str]:
    """The names of the optimizer's per-step scalars (`_step_scalars`), in the order a step takes them."""
    return list(_step_scalars(spec, torch.ones(())))


def scalar_tables(spec: Spec, t: torch.Tensor, n_steps: int) -> list[torch.Tensor]:
    """The optimizer's step scalars of the next n_steps steps after step count t, one value per
    step. PT: computed before the loop, so a step reads one number: inductor inlines a 0-d value
    into each consumer's loop, and Adam's step size (two pows, a sqrt) ran once per weight element."""
    if not scalar_names(spec):
        return []
    steps = t + torch.arange(1, n_steps + 1, dtype=t.dtype, device=t.device)
    return list(_step_scalars(spec, steps).values())


def loop_args(spec: Spec, n_steps: int, x: torch.Tensor, t: torch.Tensor, order: torch.Tensor,
              mut: list[torch.Tensor], first: int = 0) -> tuple:
    """A loop's arguments: (n_steps, order2d, x, t, loss_sum, correct, *mutables, *scalar tables),
    for n_steps steps from full batch `first` on. order2d and the tables hold every full batch of
    the epoch whatever n_steps is (order2d's rows turned to start at `first`, the tables at the
    optimizer's step count), so a loop compiled for the epoch also runs any run of its batches (the
    self-check, the benchmark's check of the last batches) without recompiling."""
    bs = spec.training.batch_size
    full = len(x) // bs
    order2d = order[:full * bs].view(full, bs)
    # PT: shape (1,), not (): torch.compile drops in-place updates of a 0-d float64 CPU input (2.13)
    loss_sum = torch.zeros(1, dtype=torch.float64, device=x.device)
    correct = torch.zeros(1, dtype=torch.int64, device=x.device)
    return (torch.tensor(n_steps, device=x.device), torch.roll(order2d, -first, 0) if first else order2d,
            x.reshape(len(x), -1), t, loss_sum, correct, *mut, *scalar_tables(spec, mut[-1], full))


@contextlib.contextmanager
def one_thread(device: str) -> Iterator[None]:
    """One intra-op thread on CPU while inside: a step is microseconds of work, so OpenMP
    fork/join costs more than it saves (and spins when the cores are shared)."""
    n = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def trace(model: torch.nn.Module, spec: Spec, decompose: bool) -> torch.fx.GraphModule:
    """The book's step as one graph: step(*mutables, *scalars, xb, tb) -> (loss, correct),
    updating the mutables in place; scalars: this step's `_step_scalars`. Autograd runs once,
    here. decompose: small matrix products as broadcast multiplies (CPU: they fuse into the
    step's kernel at batch 1). Unmet("tracing the step") when make_fx cannot trace it."""
    try:
        return _trace(model, spec, decompose)
    except Exception as exc:  # noqa: BLE001  every tier built on the traced step is dropped together
        first = exc
    try:  # PT: torch < 2.5's Adam takes math.sqrt of its step count, which a traced step holds as a symbol;
        return _trace(model, spec, decompose, differentiable=True)  # its differentiable form keeps it a tensor
    except Exception:  # noqa: BLE001
        raise Unmet("tracing the step", f"{type(first).__name__}: {str(first).strip()[:300]}") from first


def _trace(model: torch.nn.Module, spec: Spec, decompose: bool, differentiable: bool = False) -> torch.fx.GraphModule:
    names_p = [n for n, _ in model.named_parameters()]
    names_b = [n for n, _ in model.named_buffers()]
    n_p, n_b, keys, loss_fn, book = len(names_p), len(names_b), scalar_names(spec), SpecLoss(spec), model.optimizer

    def step(*args):
        n_m = len(args) - 2 - len(keys)  # the mutables, then this step's scalars, then the batch
        params, buffers, state = list(args[:n_p]), args[n_p:n_p + n_b], list(args[n_p + n_b:n_m])
        scalars, (xb, tb) = dict(zip(keys, args[n_m:-2])), args[-2:]
        leaves = [p.detach().requires_grad_() for p in params]
        with torch.enable_grad():
            z = torch.func.functional_call(model, {**dict(zip(names_p, leaves)), **dict(zip(names_b, buffers))},
                                           (xb,))
            loss = loss_fn(tb, z)
            grads = torch.autograd.grad(loss, leaves)
        with torch.no_grad():  # the book optimizer's own step on these tensors
            _optim.step(book, params, list(grads), state, scalars, differentiable)
            correct = (z.detach().argmax(-1) == tb.argmax(-1)).sum()
        return loss.detach(), correct

    bs, dtype, dev = spec.training.batch_size, getattr(torch, spec.training.dtype), model.device
    example = [v.clone() for v in mutables(model)] + [torch.ones((), dtype=dtype, device=dev) for _ in keys] + [
        torch.zeros(bs, spec.network.input_units, dtype=dtype, device=dev),
        torch.zeros(bs, spec.network.output_units, dtype=dtype, device=dev)]
    model.train()
    table = {aten.add.Tensor: _add_alpha, aten.add_.Tensor: _add_alpha_}
    if decompose:
        table.update({aten.mm.default: _small_mm, aten.addmm.default: _small_addmm})
    # PT: fake tensors: torch.optim reads its step count with .item(), a symbolic number in the graph
    return _unprofiled(make_fx(step, decomposition_table=table, tracing_mode="fake")(*example))


_PROFILER = ("profiler._record_function_enter", "profiler._record_function_exit")


def _unprofiled(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """The graph without torch.optim's profiler range (two ops torch.compile cannot take) and what
    nothing uses: reads of a step count that no formula needs, the instance's fresh state. Only ops
    that mutate nothing are dropped (FX's own dead-code pass drops unused in-place updates in torch 2.4)."""
    for node in reversed(list(gm.graph.nodes)):
        schema = getattr(node.target, "_schema", None)
        profiling = node.op == "call_function" and str(node.target).startswith(_PROFILER)
        unused = not node.users and (node.op == "get_attr" or (schema is not None and not schema.is_mutable))
        if profiling or (unused and node.op in ("call_function", "get_attr")):
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


def _small_mm(a, b):
    """mm with a size-1 dimension as broadcast multiply (+ sum): fuses into the step's one kernel
    instead of a BLAS call per product (batch 1); other shapes stay BLAS."""
    (m, k), n = a.shape, b.shape[1]
    if k == 1:
        return a * b  # an outer product: exactly the BLAS result
    if m == 1 or n == 1:
        return (a.unsqueeze(2) * b.unsqueeze(0)).sum(1)
    return NotImplemented


def _small_addmm(bias, a, b, beta=1, alpha=1):
    r = _small_mm(a, b) if beta == 1 and alpha == 1 else NotImplemented
    return r if r is NotImplemented else bias + r


def _add_alpha(a, b, alpha=1):
    """add with alpha != 1 as a + b * alpha. PT: inductor's add(inp, mm) -> addmm pattern ignores
    alpha (torch 2.13), so a gradient straight from a matmul must not reach add with one."""
    return NotImplemented if alpha == 1 else aten.add.Tensor(a, aten.mul.Tensor(b, alpha))


def _add_alpha_(a, b, alpha=1):
    return NotImplemented if alpha == 1 else a.add_(aten.mul.Tensor(b, alpha))


# The loop around the traced step, written once. These functions run with the globals of a
# namespace (`bind`: STEP, the traced step, BS and N_C), so that the tuned tier can save a
# compiled loop that names only what a new process can import (torch_impl._tuned). mutmut leaves
# them as they are: its rewrite would make them look up its own helpers in that namespace.


def one_step(i, order2d, x, t, loss_sum, correct, state):  # pragma: no mutate block
    """Step number i (a device tensor): gather the batch and the step's scalars on device,
    update in place. state: the mutables, then the scalar tables."""
    rows = order2d.index_select(0, i.reshape(1)).reshape(BS)  # noqa: F821
    scalars = [table.index_select(0, i.reshape(1)).reshape(()) for table in state[len(state) - N_C:]]  # noqa: F821
    loss, c = STEP(*state[:len(state) - N_C], *scalars, x.index_select(0, rows), t.index_select(0, rows))  # noqa: F821
    loss_sum.add_(loss.to(torch.float64) * BS)  # noqa: F821  PT: what the book's loss.item() * len(xb) adds
    correct.add_(c)


def loop_eager(n_steps, order2d, x, t, loss_sum, correct, *state):  # pragma: no mutate block
    i = torch.zeros((), dtype=torch.int64, device=x.device)
    for _ in range(int(n_steps)):
        one_step(i, order2d, x, t, loss_sum, correct, state)
        i.add_(1)


def loop_while(n_steps, order2d, x, t, loss_sum, correct, *state):  # pragma: no mutate block
    """The steps as one `torch.while_loop` (under torch.compile: no Python per step)."""
    def body(i):
        one_step(i, order2d, x, t, loss_sum, correct, state)
        return (i + 1,)

    i = torch.zeros((), dtype=torch.int64, device=x.device)
    return torch.while_loop(lambda i: i < n_steps, body, (i,))  # returned, or it is dead code


def bind(namespace: dict) -> types.SimpleNamespace:
    """one_step, loop_eager and loop_while running with `namespace` as their globals (it holds
    STEP, BS, N_C, torch), each with its own code object (torch.compile caches per code object)."""
    fns = {fn.__name__: fn for fn in (one_step, loop_eager, loop_while)}
    bound = {name: types.FunctionType(fn.__code__.replace(), namespace, name, fn.__defaults__, fn.__closure__)
             for name, fn in fns.items()}
    namespace.update(bound)  # each calls the others through the namespace
    return types.SimpleNamespace(**bound)


def namespace_of(step: Callable, spec: Spec) -> dict:
    """The globals the loop functions run with, for a traced step of `spec`."""
    return {"STEP": step, "BS": spec.training.batch_size, "N_C": len(scalar_names(spec)), "torch": torch,
            "__builtins__": builtins, "__name__": f"{__name__}.step"}  # PT: dynamo reads a function's builtins


def make_loop(how: str, spec: Spec, step: Callable, device: str) -> Callable:
    """The loop around a traced step, as a public tier makes it: 'loop' compiles the whole
    `torch.while_loop`, 'graphs' replays the compiled step from CUDA graphs (torch_impl._graphs),
    'step' calls the compiled step per batch, 'eager' the traced step uncompiled."""
    namespace = namespace_of(step, spec)
    fns = bind(namespace)
    if how == "loop":
        return torch.compile(fns.loop_while, fullgraph=True, dynamic=False)
    if how in ("graphs", "step"):  # PT: the loops call one_step through their globals: they get the compiled one
        namespace["one_step"] = torch.compile(fns.one_step, fullgraph=True, dynamic=False)
    if how == "graphs":
        from torch_impl._graphs import graphs_loop
        return graphs_loop(namespace["one_step"], namespace["N_C"], device)
    return fns.loop_eager
