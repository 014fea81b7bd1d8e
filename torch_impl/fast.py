"""The fast variant in PyTorch: a whole epoch as one compiled loop, same math as the book.

The step is the book's: forward, SpecLoss, autograd backward and the optimizer's own
update rule (torch_impl.optimizers.update and _step_scalars, the functions SpecOptimizer.step
applies), traced once into a graph of aten ops and applied in place to the model's
parameters, buffers and optimizer state. No update formula lives in this file; how the loop
around the step is compiled, saved and loaded is in torch_impl.compiled.
"""
from __future__ import annotations

import time
import warnings
from typing import Callable

import numpy as np
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from common import canonical
from common.compare import compare_sets
from common.config import step_key
from common.data import epoch_permutation
from common.environment import compile_cache_dir
from common.history import check_epoch
from common.spec import Spec
from common.tolerances import tol
from torch_impl.compiled import (_fresh, _inductor_options, _key, _one_thread, _saved_or_compiled, _scalar_names,
                                 _step_module)
from torch_impl.losses import SpecLoss, one_hot
from torch_impl.model import get_weights, set_weights
from torch_impl.optimizers import _step_scalars, get_optimizer_state, set_optimizer_state, update
from torch_impl.training import _step, as_inputs, evaluate

aten = torch.ops.aten
GRAPH_STEPS = 64    # CUDA: steps captured per CUDA graph launch
CHECK_STEPS = 8  # the self-check's steps
_LOOPS: dict[tuple, tuple] = {}  # (step_key(spec), n) -> (CPU loop, mode), shared by the models of a spec

# --- section: compile_epoch ---


def _mutables(model: torch.nn.Module) -> list[torch.Tensor]:
    """Everything a step updates in place: parameters, buffers, optimizer slots (slot-major)
    and the optimizer's step count."""
    opt, params = model.optimizer, [p for _, p in model.named_parameters()]
    slots = canonical.slot_names(opt.spec)
    return [p.detach() for p in params] + list(model.buffers()) + [opt.state[p][k] for k in slots for p in params] \
        + [opt.t]


def _scalar_tables(spec: Spec, t: torch.Tensor, n_steps: int) -> list[torch.Tensor]:
    """The optimizer's step scalars of the next n_steps steps after step count t, one value
    per step (the rule's own `_step_scalars`, on the vector of step numbers). PT: computed before
    the loop, so a step reads one number: inductor inlines a 0-d value into each consumer's
    loop, and Adam's step size (two pows, a sqrt) ran once per weight element (+24% per conf5 epoch)."""
    steps = t + torch.arange(1, n_steps + 1, dtype=t.dtype, device=t.device)
    return list(_step_scalars(spec, steps).values())


def _trace_step(model: torch.nn.Module, spec: Spec, decompose: bool) -> torch.fx.GraphModule:
    """The book's step as one graph of aten ops: step(*mutables, *scalars, xb, tb) ->
    (loss, correct), updating the mutables in place; scalars: this step's _step_scalars.
    Autograd runs once, here, while tracing."""
    names_p = [n for n, _ in model.named_parameters()]
    names_b = [n for n, _ in model.named_buffers()]
    n_p, n_b, slots = len(names_p), len(names_b), canonical.slot_names(spec)
    keys = _scalar_names(spec)
    loss_fn = SpecLoss(spec)

    def step(*args):
        n_m = len(args) - 2 - len(keys)  # the mutables, then this step's scalars, then the batch
        params, buffers, flat, t = args[:n_p], args[n_p:n_p + n_b], args[n_p + n_b:n_m - 1], args[n_m - 1]
        scalars, (xb, tb) = dict(zip(keys, args[n_m:-2])), args[-2:]
        leaves = [p.detach().requires_grad_() for p in params]
        with torch.enable_grad():
            z = torch.func.functional_call(model, {**dict(zip(names_p, leaves)), **dict(zip(names_b, buffers))},
                                           (xb,))
            loss = loss_fn(tb, z)
            grads = torch.autograd.grad(loss, leaves)
        with torch.no_grad():  # what SpecOptimizer.step does: count the step, then update every weight
            t.add_(1)
            for i, (p, g) in enumerate(zip(params, grads)):
                update(spec, p, g, {k: flat[j * n_p + i] for j, k in enumerate(slots)}, scalars)
            correct = (z.detach().argmax(-1) == tb.argmax(-1)).sum()
        return loss.detach(), correct

    bs, dtype = spec.training.batch_size, getattr(torch, spec.training.dtype)
    dev = next(model.parameters()).device
    example = [v.clone() for v in _mutables(model)] + [torch.ones((), dtype=dtype, device=dev) for _ in keys] + [
        torch.zeros(bs, spec.network.input_units, dtype=dtype, device=dev),
        torch.zeros(bs, spec.network.output_units, dtype=dtype, device=dev)]
    model.train()
    table = {aten.add.Tensor: _add_alpha, aten.add_.Tensor: _add_alpha_}
    if decompose:
        table.update({aten.mm.default: _small_mm, aten.addmm.default: _small_addmm})
    return make_fx(step, decomposition_table=table)(*example)


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


def _twin(model: torch.nn.Module, spec: Spec) -> torch.nn.Module:
    """A new model of the spec holding copies of `model`'s weights and optimizer state."""
    from torch_impl.model import build_model
    twin = build_model(spec, device=model.device)
    set_weights(twin, get_weights(model))
    set_optimizer_state(twin, spec, get_optimizer_state(model, spec))
    twin.optimizer.t.copy_(model.optimizer.t)
    return twin


def _disagreement(model: torch.nn.Module, spec: Spec, candidate: Callable, data: tuple) -> str | None:
    """Why `candidate(twin, loss_sum, correct)`, k compiled steps on a copy of the model, disagrees
    with k book steps (`_step`: the book optimizer's own `step()`) on another copy; None when they
    agree up to rounding. data: (order2d, x, t) of the k steps. Checked once, when compiling."""
    order2d, x, t = data
    got, want = _twin(model, spec), _twin(model, spec)
    start = get_weights(model)
    loss_sum = torch.zeros(1, dtype=torch.float64, device=x.device)
    correct = torch.zeros(1, dtype=torch.int64, device=x.device)
    with torch.no_grad():  # PT: while_loop may mutate its inputs only without autograd
        candidate(got, loss_sum, correct)
    want_loss, want_correct = 0.0, 0
    for rows in order2d:
        loss, z = _step(want, spec, x[rows], t[rows])
        want_loss += loss.item() * len(rows)
        want_correct += int((z.argmax(-1) == t[rows].argmax(-1)).sum())
    after = {"weights": (get_weights(got), get_weights(want)),
             "optimizer state": (get_optimizer_state(got, spec), get_optimizer_state(want, spec))}
    for what, (a, b) in after.items():
        moved = {k: v - start[k] for k, v in b.items()} if what == "weights" else b
        scale = max((float(np.nanmax(np.abs(v))) for v in moved.values() if v.size and not np.all(np.isnan(v))),
                    default=0.0)
        worst, _ = compare_sets(a, b, tol(spec.training.dtype, "self-check"), scale, equal_nan=True)
        if not worst.passed:
            return f"{what}: {worst.where}"
    got_loss = float(loss_sum)
    same_loss = abs(got_loss - want_loss) <= 1e-4 * abs(want_loss) or (np.isnan(got_loss) and np.isnan(want_loss))
    if not same_loss or int(correct) != want_correct:
        return f"loss sum {got_loss} vs {want_loss}, correct {int(correct)} vs {want_correct}"
    return None


def _check_data(spec: Spec, n_examples: int, k: int, device: str) -> tuple:
    """Inputs shaped like an epoch's, whose first k batches hold random data: (x, t, order)."""
    net, bs, dtype = spec.network, spec.training.batch_size, getattr(torch, spec.training.dtype)
    gen = torch.Generator().manual_seed(0)  # not the global generator
    x = torch.zeros(n_examples, net.input_units, dtype=dtype)
    x[:k * bs] = torch.randn(k * bs, net.input_units, generator=gen, dtype=dtype)
    t = torch.zeros(n_examples, net.output_units, dtype=dtype)
    t[torch.arange(k * bs), torch.randint(net.output_units, (k * bs,), generator=gen)] = 1
    return x.to(device), t.to(device), torch.arange(n_examples, device=device)


def compile_epoch(model: torch.nn.Module, spec: Spec, n_examples: int) -> Callable:
    """A function (x, t, order) -> (loss_sum, correct) that trains one epoch on device.

    x: (n, 28, 28) or (n, 784) inputs, t: one-hot targets, order: int64 permutation, all
    on the model's device. The full batches run in a compiled loop (CPU: a `torch.compile`d
    `while_loop` with the C++ wrapper, compiled here; CUDA: CUDA graphs of GRAPH_STEPS steps,
    captured on the first call); the last, smaller batch runs the book's own `_step`. The
    returned function's `.mode` says which loop runs: 'compiled', 'cuda_graph', 'eager' (the
    fall-back when compiling fails: the same traced step, looped from Python) or 'none' (no
    full batch).
    """
    bs, device = spec.training.batch_size, model.device
    full, tail = divmod(n_examples, bs)

    def inputs(n_steps, x, t, order, mut):
        # PT: shape (1,), not (): torch.compile drops in-place updates of a 0-d float64 CPU input (2.13)
        loss_sum = torch.zeros(1, dtype=torch.float64, device=x.device)
        correct = torch.zeros(1, dtype=torch.int64, device=x.device)
        return (torch.tensor(n_steps, device=x.device), order[:n_steps * bs].view(n_steps, bs),
                x.reshape(len(x), -1), t, loss_sum, correct, *mut, *_scalar_tables(spec, mut[-1], n_steps))

    key = (step_key(spec), n_examples)  # PT: another seed or spec name needs no new compile
    if device == "cpu" and key in _LOOPS:  # built before for this step: reuse it
        loop, mode = _LOOPS[key]
    else:
        loop, mode = _build_loop(model, spec, n_examples, inputs)
        if device == "cpu":
            _LOOPS[key] = loop, mode

    def run(x: torch.Tensor, t: torch.Tensor, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model.train()
        args = inputs(full, x, t, order, _mutables(model))
        loss_sum, correct = args[4], args[5]
        with _one_thread(device):  # the tail too: a 2-thread op between loops leaves OpenMP threads spinning
            with torch.no_grad():  # PT: while_loop may mutate its inputs only without autograd
                loop(*args)
            if tail:  # the last, smaller batch: the book's own step
                rows = order[full * bs:]
                xb, tb = x.reshape(n_examples, -1)[rows], t[rows]
                loss, z = _step(model, spec, xb, tb)
                loss_sum.add_(loss.detach().to(torch.float64) * tail)
                correct.add_((z.argmax(-1) == tb.argmax(-1)).sum())
        return loss_sum.reshape(()), correct.reshape(())

    run.mode = mode
    return run


def _build_loop(model: torch.nn.Module, spec: Spec, n_examples: int, inputs: Callable):
    """(loop, mode): loop(n_steps, order2d, x, t, loss_sum, correct, *mutables, *tables) runs
    the full batches of an epoch in place (tables: `_scalar_tables`); mode as compile_epoch's `.mode`."""
    bs, device = spec.training.batch_size, model.device
    full, n_c = n_examples // bs, len(_scalar_names(spec))
    if full and device == "cpu":
        cache = compile_cache_dir() / "torch-loops"
        steps = _step_module(model, spec, decompose=True, cache=cache, trace=_trace_step)
        k = min(full, CHECK_STEPS)  # compiled on inputs shaped like the real ones, then checked
        x, t, order = _check_data(spec, n_examples, k, device)
        example = inputs(full, x, t, order, _mutables(model))
        failures = []
        for tried, options in enumerate(_inductor_options()):
            path = cache / f"loop_{_key(step_key(spec), n_examples, sorted(options.items()))}.bin"
            for attempt in _saved_or_compiled(steps, options, example, path):
                try:  # C++ loop: no Python per step
                    with _one_thread(device):  # PT: a saved loop's guards hold the thread count it runs with
                        compiled = attempt()

                    def candidate(twin, loss_sum, correct):
                        args = inputs(full, x, t, order, _mutables(twin))
                        compiled(torch.tensor(k), *args[1:4], loss_sum, correct, *args[6:])
                    with _one_thread(device):
                        problem = _disagreement(model, spec, candidate, (order[:k * bs].view(k, bs), x, t))
                    if problem:
                        raise RuntimeError(f"compiled loop disagrees with the book's step: {problem}")
                    if tried:
                        warnings.warn(f"torch_impl.fast: {spec.name} compiled with inductor's own options, slower "
                                      f"(with twinbench's: {'; '.join(failures)})", RuntimeWarning, stacklevel=3)
                    return compiled, "compiled"
                except Exception as e:  # noqa: BLE001  any spec the compiler cannot take still trains, uncompiled
                    failures.append(f"{type(e).__name__}: {e}")
        warnings.warn(f"torch_impl.fast: compiling {spec.name} failed ({'; '.join(failures)}); "
                      "looping the traced step uncompiled", RuntimeWarning, stacklevel=3)
        return steps._loop_eager, "eager"
    steps = _step_module(model, spec, decompose=False, cache=None, trace=_trace_step)
    if full and device == "cuda":
        return _cuda_graph_loop(model, spec, steps._one_step, steps._loop_eager, full, n_c), "cuda_graph"
    return steps._loop_eager, "eager" if full else "none"


def _capture(fn: Callable) -> torch.cuda.CUDAGraph:
    """fn's kernels recorded into a CUDA graph (not run); `.replay()` runs them."""
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g


def _cuda_graph_loop(model: torch.nn.Module, spec: Spec, one_step, loop_eager, full: int, n_c: int) -> Callable:
    """CUDA: the steps replayed from CUDA graphs of GRAPH_STEPS (and of 1) steps: one launch per
    graph instead of one per kernel. Captured once per set of data and model tensor addresses
    (the epoch's scalar tables, the last n_c inputs, are copied into captured ones);
    if capturing fails, the steps run uncompiled (loop_eager)."""
    graphs: dict[tuple, tuple | None] = {}

    def steps(step, n, i, static, mut):
        def record():
            for _ in range(n):
                step(i, *static, mut)
                i.add_(1)
        return record

    def build(order2d, x, t, loss_sum, correct, mut, tables):
        i = torch.zeros((), dtype=torch.int64, device=x.device)
        static = (order2d.clone(), x, t, loss_sum.clone(), correct.clone())
        mut = [*mut, *(table.clone() for table in tables)]  # the captured tables

        def warm_up(step):  # PT: on a side stream before capturing, as torch.cuda.graphs asks
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):  # on copies of everything a step writes: the model is not touched
                    step(i.zero_(), *static[:3], loss_sum.clone(), correct.clone(), [m.clone() for m in mut])
            torch.cuda.current_stream().wait_stream(side)

        step = one_step
        try:  # inductor (Triton) fuses the step's ~100 small kernels into a few
            compiled = torch.compile(_fresh(one_step), fullgraph=True, dynamic=False)
            warm_up(compiled)
            k = min(full, CHECK_STEPS)

            def candidate(twin, ls, c):
                j = torch.zeros((), dtype=torch.int64, device=x.device)
                state = _mutables(twin) + _scalar_tables(spec, twin.optimizer.t, k)
                for _ in range(k):
                    compiled(j, *static[:3], ls, c, state)
                    j.add_(1)
            problem = _disagreement(model, spec, candidate, (static[0][:k], x.reshape(len(x), -1), t))
            if problem:
                raise RuntimeError(f"compiled step disagrees with the book's step: {problem}")
            step = compiled
        except Exception as e:  # noqa: BLE001  the uncompiled step, still in CUDA graphs
            warnings.warn(f"torch_impl.fast: compiling the CUDA step failed ({type(e).__name__}: {e}); "
                          "capturing it uncompiled", RuntimeWarning, stacklevel=3)
            warm_up(one_step)
        many = min(GRAPH_STEPS, full)
        captured = (_capture(steps(step, many, i, static, mut)), _capture(steps(step, 1, i, static, mut)))
        return i, static, mut[len(mut) - n_c:], many, *captured

    def loop(n_steps, order2d, x, t, loss_sum, correct, *state):
        mut, tables = state[:len(state) - n_c], state[len(state) - n_c:]
        key = tuple(a.data_ptr() for a in (x, t, *mut))
        if key not in graphs:
            try:
                graphs[key] = build(order2d, x, t, loss_sum, correct, mut, tables)
            except Exception as e:  # noqa: BLE001
                warnings.warn(f"torch_impl.fast: CUDA graph capture failed ({type(e).__name__}: {e}); "
                              "looping the traced step uncompiled", RuntimeWarning, stacklevel=2)
                graphs[key] = None
        if graphs[key] is None:
            return loop_eager(n_steps, order2d, x, t, loss_sum, correct, *state)
        i, static, static_tables, many, g_many, g_one = graphs[key]
        for dst, src in zip((*static, *static_tables), (order2d, None, None, loss_sum, correct, *tables)):
            dst.copy_(src) if src is not None else None
        i.zero_()
        for _ in range(full // many):
            g_many.replay()
        for _ in range(full % many):
            g_one.replay()
        loss_sum.copy_(static[3]), correct.copy_(static[4])

    return loop


# --- section: fit ---


def fit(model: torch.nn.Module, spec: Spec, data: tuple, epochs: int | None = None, initial_epoch: int = 0,
        on_epoch: Callable[[dict], None] | None = None, progress=None) -> list[dict]:
    """Train like `torch_impl.fit` (same order, same updates), one compiled loop per epoch.

    The loop is compiled before the first epoch, so `seconds` is training time only.
    A progress bar, if given, advances once per epoch (there is no Python per step)."""
    x, y, x_eval, y_eval = data
    n, device = len(x), next(model.parameters()).device
    xs = as_inputs(spec, x, device.type)  # the data is copied to the device once
    ts = one_hot(spec, y).to(device)
    run = compile_epoch(model, spec, n)
    history = []
    for epoch in range(initial_epoch, epochs or spec.training.epochs):
        order = epoch_permutation(spec.training.seed, epoch, n) if spec.training.shuffle else np.arange(n)
        order = torch.as_tensor(order, device=device)
        bar = progress(epoch) if progress else None
        torch.cuda.synchronize() if model.device == "cuda" else None
        start = time.perf_counter()
        loss_sum, correct = run(xs, ts, order)
        torch.cuda.synchronize() if model.device == "cuda" else None
        seconds = time.perf_counter() - start
        if bar:
            bar.update(-(-n // spec.training.batch_size))
            bar.close()
        val_loss, val_acc = evaluate(model, spec, x_eval, y_eval)
        row = {"epoch": epoch + 1, "loss": float(loss_sum) / n, "accuracy": int(correct) / n,
               "val_loss": val_loss, "val_accuracy": val_acc, "seconds": seconds}
        history.append(row)
        on_epoch(row) if on_epoch else None
        check_epoch(spec, row)  # a non-finite loss ends the run here (common.history.Diverged)
    return history
