"""The fast variant in PyTorch: the book's step traced once, a whole epoch looped on device.

Same math as torch_impl.training: the step is the book's forward, SpecLoss,
autograd backward and the optimizer formulas of torch_impl.optimizers, applied
in place to the model's own parameters, buffers and `model.optimizer.state`.
"""
from __future__ import annotations

import contextlib
import time
import types
import warnings
from typing import Callable

import numpy as np
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from common.data import epoch_permutation
from common.spec import Spec
from torch_impl import optimizers as O
from torch_impl.losses import SpecLoss, one_hot
from torch_impl.training import _step, as_inputs, evaluate

aten = torch.ops.aten
UNROLL = 4          # CPU: steps per while_loop iteration (more: less loop overhead, longer compile)
GRAPH_STEPS = 64    # CUDA: steps captured per CUDA graph launch
_LOOPS: dict[tuple, tuple] = {}  # (spec, n_examples) -> (CPU loop, mode), shared by the models of a spec

# --- section: compile_epoch ---


def _slot_names(opt: torch.optim.Optimizer) -> list[str]:
    """The per-parameter state tensors the book's optimizer keeps, in a fixed order."""
    g = opt.param_groups[0]
    if isinstance(opt, torch.optim.SGD):
        return ["momentum_buffer"] if g["momentum"] != 0 else []
    if isinstance(opt, torch.optim.Adagrad):
        return ["sum"]
    if isinstance(opt, O.InsideSqrtRMSprop):
        return ["square_avg", "grad_avg"]
    if isinstance(opt, torch.optim.RMSprop):
        return ["square_avg"] + (["grad_avg"] if g["centered"] else [])
    if isinstance(opt, torch.optim.Adam):
        return ["exp_avg", "exp_avg_sq"]
    raise NotImplementedError(f"fast path: no update rule for {type(opt).__name__}")


def _scalar_dtype() -> torch.dtype:
    """The dtype torch.optim gives its step counters."""
    from torch.optim.optimizer import _get_scalar_dtype
    return _get_scalar_dtype()


def _ensure_state(opt: torch.optim.Optimizer) -> None:
    """Create, as the book's first step would, state the book creates lazily (zeros act as its start)."""
    g = opt.param_groups[0]
    scalar = _scalar_dtype()
    for p in g["params"]:
        s = opt.state[p]
        if isinstance(opt, torch.optim.SGD):
            if g["momentum"] != 0 and s.get("momentum_buffer") is None:
                s["momentum_buffer"] = torch.zeros_like(p)  # PT: the book clones g on step 1; 0*m + g is g
        elif s or isinstance(opt, torch.optim.Adagrad):  # PT: Adagrad makes its state in __init__
            continue
        elif isinstance(opt, O.KerasAdam):
            s["step"] = torch.tensor(0.0, dtype=torch.float64)
            s["exp_avg"], s["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
        elif isinstance(opt, torch.optim.Adam):
            s["step"] = torch.tensor(0.0, dtype=scalar)
            s["exp_avg"], s["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
        elif isinstance(opt, O.InsideSqrtRMSprop):
            s["square_avg"], s["grad_avg"] = torch.zeros_like(p), torch.zeros_like(p)
        elif isinstance(opt, torch.optim.RMSprop):
            s["step"] = torch.tensor(0.0, dtype=scalar)
            s["square_avg"] = torch.zeros_like(p)
            if g["centered"]:
                s["grad_avg"] = torch.zeros_like(p)


def _counts_steps(opt: torch.optim.Optimizer) -> bool:
    """Whether the book's step increments state["step"] (the Inside* variants leave it alone)."""
    return (isinstance(opt, (torch.optim.Adam, torch.optim.Adagrad, torch.optim.RMSprop))
            and not isinstance(opt, (O.InsideSqrtAdagrad, O.InsideSqrtRMSprop)))


def _coefficients(opt: torch.optim.Optimizer, first: float, n: int) -> list[tuple[float, ...]]:
    """Per-step scalars the book computes in Python from the step count, for steps first+1..first+n.

    Computed here with the book's own expressions (Python floats), so the loop only reads them."""
    g = opt.param_groups[0]
    lr, steps = g["lr"], [first + k for k in range(1, n + 1)]
    if isinstance(opt, O.KerasAdam):
        b1, b2 = g["betas"]
        return [(lr * (1.0 - b2 ** t) ** 0.5 / (1.0 - b1 ** t),) for t in steps]
    if isinstance(opt, torch.optim.Adam):
        b1, b2 = g["betas"]
        return [(lr / (1 - b1 ** t), (1 - b2 ** t) ** 0.5) for t in steps]
    if isinstance(opt, torch.optim.Adagrad) and not isinstance(opt, O.InsideSqrtAdagrad):
        return [(lr / (1 + (t - 1) * g["lr_decay"]),) for t in steps]
    return [(0.0,)] * n


def _update(opt: torch.optim.Optimizer, params, grads, slots, c: torch.Tensor) -> None:
    """One optimizer step in place, written as the book's optimizer writes it; c: this step's scalars."""
    g0 = opt.param_groups[0]
    lr = g0["lr"]
    for p, g, s in zip(params, grads, slots):
        cast = lambda k: c[k].to(p.dtype)  # noqa: E731  PT: a Python scalar enters a kernel in the tensor's dtype
        if isinstance(opt, torch.optim.SGD):
            if g0["momentum"] != 0:
                buf = s["momentum_buffer"]
                buf.mul_(g0["momentum"]).add_(g, alpha=1 - g0["dampening"])
                g = g.add(buf, alpha=g0["momentum"]) if g0["nesterov"] else buf
            p.add_(g, alpha=-lr)
        elif isinstance(opt, O.KerasAdam):
            b1, b2 = g0["betas"]
            s["exp_avg"].mul_(b1).add_(g, alpha=1.0 - b1)
            s["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1.0 - b2)
            p.sub_(cast(0) * s["exp_avg"] / (s["exp_avg_sq"].sqrt() + g0["eps"]))
        elif isinstance(opt, torch.optim.Adam):
            b1, b2 = g0["betas"]
            s["exp_avg"].lerp_(g, 1 - b1)
            s["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (s["exp_avg_sq"].sqrt() / cast(1)).add_(g0["eps"])
            p.add_((-c[0]).to(p.dtype) * s["exp_avg"] / denom)  # addcdiv_(value=-step_size): (v * m) / d
        elif isinstance(opt, O.InsideSqrtAdagrad):
            s["sum"].addcmul_(g, g)
            p.sub_(lr * g / torch.sqrt(s["sum"] + g0["eps"]))
        elif isinstance(opt, torch.optim.Adagrad):
            s["sum"].addcmul_(g, g, value=1)
            p.add_((-c[0]).to(p.dtype) * g / s["sum"].sqrt().add_(g0["eps"]))  # addcdiv_(value=-clr)
        elif isinstance(opt, O.InsideSqrtRMSprop):
            rho = g0["alpha"]
            s["square_avg"].mul_(rho).addcmul_(g, g, value=1.0 - rho)
            d = s["square_avg"]
            if g0["centered"]:
                s["grad_avg"].mul_(rho).add_(g, alpha=1.0 - rho)
                d = d - torch.square(s["grad_avg"])
            p.sub_(lr * g / torch.sqrt(d + g0["eps"]))
        elif isinstance(opt, torch.optim.RMSprop):
            a = g0["alpha"]
            s["square_avg"].mul_(a).addcmul_(g, g, value=1 - a)
            if g0["centered"]:
                s["grad_avg"].lerp_(g, 1 - a)
                avg = s["square_avg"].addcmul(s["grad_avg"], s["grad_avg"], value=-1).sqrt_()
            else:
                avg = s["square_avg"].sqrt()
            p.add_(-lr * g / avg.add_(g0["eps"]))  # addcdiv_(value=-lr)
        else:
            raise NotImplementedError(f"fast path: no update rule for {type(opt).__name__}")


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


def _mutables(model: torch.nn.Module) -> list[torch.Tensor]:
    """Everything a step updates in place: parameters, buffers, optimizer slots (slot-major)."""
    opt, params = model.optimizer, list(model.parameters())
    return ([p.detach() for p in params] + list(model.buffers())
            + [opt.state[p][k] for k in _slot_names(opt) for p in params])


def _trace_step(model: torch.nn.Module, spec: Spec, decompose: bool) -> torch.fx.GraphModule:
    """The book's step as one graph of aten ops: step(*mutables, c, xb, tb) -> (loss, correct),
    updating the mutables in place. Autograd runs once, here, while tracing."""
    opt = model.optimizer
    names_p = [n for n, _ in model.named_parameters()]
    names_b = [n for n, _ in model.named_buffers()]
    n_p, n_b, slots = len(names_p), len(names_b), _slot_names(opt)
    loss_fn = SpecLoss(spec)

    def step(*args):
        params, buffers = args[:n_p], args[n_p:n_p + n_b]
        flat = args[n_p + n_b:-3]
        c, xb, tb = args[-3:]
        leaves = [p.detach().requires_grad_() for p in params]
        with torch.enable_grad():
            z = torch.func.functional_call(model, {**dict(zip(names_p, leaves)), **dict(zip(names_b, buffers))},
                                           (xb,))
            loss = loss_fn(tb, z)
            grads = torch.autograd.grad(loss, leaves)
        with torch.no_grad():
            _update(opt, params, grads, [{k: flat[j * n_p + i] for j, k in enumerate(slots)} for i in range(n_p)], c)
            correct = (z.detach().argmax(-1) == tb.argmax(-1)).sum()
        return loss.detach(), correct

    bs, dtype = spec.training.batch_size, getattr(torch, spec.training.dtype)
    dev = next(model.parameters()).device
    example = [v.clone() for v in _mutables(model)] + [
        torch.zeros(len(_coefficients(opt, 0.0, 1)[0]), dtype=torch.float64, device=dev),
        torch.zeros(bs, spec.network.input_units, dtype=dtype, device=dev),
        torch.zeros(bs, spec.network.output_units, dtype=dtype, device=dev)]
    model.train()
    table = {aten.add.Tensor: _add_alpha, aten.add_.Tensor: _add_alpha_}
    if decompose:
        table.update({aten.mm.default: _small_mm, aten.addmm.default: _small_addmm})
    return make_fx(step, decomposition_table=table)(*example)


def _fresh(fn):
    """fn with its own code object: torch.compile caches (and limits recompiles) per code object."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


@contextlib.contextmanager
def _one_thread(device: str):
    """One intra-op thread on CPU: a step is microseconds of work, so OpenMP fork/join costs
    more than it saves (and spins when the cores are shared)."""
    n = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _disagreement(step: Callable, reference: Callable, mut: list[torch.Tensor]) -> str | None:
    """Why `step` and `reference`, each run from copies of the same state, disagree (None if they
    agree up to rounding): the guard against a miscompiled loop, checked once when compiling."""
    runs = []
    for fn in (step, reference):
        copies = [v.clone() for v in mut]
        loss_sum = torch.zeros(1, dtype=torch.float64, device=mut[0].device)
        correct = torch.zeros(1, dtype=torch.int64, device=mut[0].device)
        fn(copies, loss_sum, correct)
        runs.append((copies, float(loss_sum), int(correct)))
    (got, loss, correct), (want, want_loss, want_correct) = runs
    moved = [float((w.double() - v.double()).abs().max()) if v.numel() else 0.0 for w, v in zip(want, mut)]
    top = max((m for m, v in zip(moved, mut) if v.is_floating_point()), default=0.0)
    for k, (g, w, v, m) in enumerate(zip(got, want, mut, moved)):
        if not v.numel():
            continue
        eps = torch.finfo(v.dtype).eps if v.is_floating_point() else 0.0
        tol = 1e-3 * max(m, 1e-3 * top) + 16 * eps * float(v.double().abs().max())
        err = float((g.double() - w.double()).abs().max())
        if not err <= tol:  # also catches NaN
            return f"state tensor {k} differs by {err:.3g} (tolerance {tol:.3g})"
    if not abs(loss - want_loss) <= 1e-4 * abs(want_loss) or correct != want_correct:
        return f"loss sum {loss} vs {want_loss}, correct {correct} vs {want_correct}"
    return None


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
    opt = model.optimizer
    if len(opt.param_groups) != 1:
        raise NotImplementedError("fast path: one parameter group expected")
    _ensure_state(opt)
    coef_width = len(_coefficients(opt, 0.0, 1)[0])

    def inputs(n_steps, x, t, order, coefs):
        # PT: shape (1,), not (): torch.compile drops in-place updates of a 0-d float64 CPU input (2.13)
        loss_sum = torch.zeros(1, dtype=torch.float64, device=x.device)
        correct = torch.zeros(1, dtype=torch.int64, device=x.device)
        return (torch.tensor(n_steps, device=x.device), order[:full * bs].view(full, bs), x.reshape(n_examples, -1),
                t, coefs, loss_sum, correct, *_mutables(model))

    if device == "cpu" and (spec, n_examples) in _LOOPS:  # built before for this spec: reuse it
        loop, mode = _LOOPS[spec, n_examples]
    else:
        loop, mode = _build_loop(model, spec, n_examples, inputs, coef_width)
        if device == "cpu":
            _LOOPS[spec, n_examples] = loop, mode

    def run(x: torch.Tensor, t: torch.Tensor, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model.train()
        _ensure_state(opt)
        first = float(opt.state[opt.param_groups[0]["params"][0]].get("step", 0.0))
        coefs = torch.tensor(_coefficients(opt, first, full), dtype=torch.float64).reshape(full, coef_width)
        args = inputs(full, x, t, order, coefs.to(x.device))
        loss_sum, correct = args[5], args[6]
        with _one_thread(device):  # the tail too: a 2-thread op between loops leaves OpenMP threads spinning
            with torch.no_grad():  # PT: while_loop may mutate its inputs only without autograd
                loop(*args)
            if full and _counts_steps(opt):  # PT: the book's optimizers count steps on the host
                for p in opt.param_groups[0]["params"]:
                    opt.state[p]["step"].add_(full)
            if tail:  # the last, smaller batch: the book's own step
                rows = order[full * bs:]
                xb, tb = x.reshape(n_examples, -1)[rows], t[rows]
                loss, z = _step(model, spec, xb, tb)
                loss_sum.add_(loss.detach().to(torch.float64) * tail)
                correct.add_((z.argmax(-1) == tb.argmax(-1)).sum())
        return loss_sum.reshape(()), correct.reshape(())

    run.mode = mode
    return run


def _build_loop(model: torch.nn.Module, spec: Spec, n_examples: int, inputs: Callable, coef_width: int):
    """(loop, mode): loop(n_steps, order2d, x, t, coefs, loss_sum, correct, *mutables) runs the
    full batches of an epoch in place; mode as compile_epoch's `.mode`."""
    bs, device, unroll = spec.training.batch_size, model.device, UNROLL
    full = n_examples // bs
    with _one_thread(device):
        gm = _trace_step(model, spec, decompose=device == "cpu")

    def one_step(i, order2d, x, t, coefs, loss_sum, correct, mut):
        """Step number i (a device tensor): gather the batch on device, update in place."""
        rows = order2d.index_select(0, i.reshape(1)).reshape(bs)
        xb, tb = x.index_select(0, rows), t.index_select(0, rows)
        loss, c = gm(*mut, coefs.index_select(0, i.reshape(1)).reshape(-1), xb, tb)
        loss_sum.add_(loss.to(torch.float64) * bs)  # PT: what the book's loss.item() * len(xb) adds, on device
        correct.add_(c)

    def loop_eager(n_steps, order2d, x, t, coefs, loss_sum, correct, *mut):
        i = torch.zeros((), dtype=torch.int64, device=x.device)
        for _ in range(full):
            one_step(i, order2d, x, t, coefs, loss_sum, correct, mut)
            i.add_(1)

    def loop_compiled(n_steps, order2d, x, t, coefs, loss_sum, correct, *mut):
        from torch._higher_order_ops.while_loop import while_loop

        def body(i):
            for k in range(unroll):  # unrolled: one loop test and one set of buffers per `unroll` steps
                one_step(i + k, order2d, x, t, coefs, loss_sum, correct, mut)
            return (i + unroll,)

        def body1(i):
            one_step(i, order2d, x, t, coefs, loss_sum, correct, mut)
            return (i + 1,)

        i = torch.zeros((), dtype=torch.int64, device=x.device)
        if unroll > 1:
            (i,) = while_loop(lambda i: i + unroll <= n_steps, body, (i,))
        return while_loop(lambda i: i < n_steps, body1, (i,))  # returned, or it is dead code

    loop, mode = loop_eager, "eager" if full else "none"
    if full and device == "cpu":
        dtype, net = getattr(torch, spec.training.dtype), spec.network
        try:
            compiled = torch.compile(_fresh(loop_compiled), fullgraph=True, dynamic=False,
                                     options={"cpp_wrapper": True})  # C++ loop: no Python per step
            # compile now, on inputs shaped like the real ones; the first k rows hold random data
            k = min(full, unroll + 1)  # steps that pass through both loops
            gen = torch.Generator().manual_seed(0)  # not the global generator
            x = torch.empty(n_examples, net.input_units, dtype=dtype)
            x[:k * bs] = torch.randn(k * bs, net.input_units, generator=gen, dtype=dtype)
            t = torch.zeros(n_examples, net.output_units, dtype=dtype)
            t[torch.arange(k * bs), torch.randint(net.output_units, (k * bs,), generator=gen)] = 1
            coefs = torch.zeros(full, coef_width, dtype=torch.float64)
            coefs[:k] = torch.tensor(_coefficients(model.optimizer, 0.0, k), dtype=torch.float64)
            args = inputs(k, x, t, torch.arange(n_examples), coefs)
            with torch.no_grad(), _one_thread(device):
                problem = _disagreement(
                    lambda m, ls, c: compiled(*args[:5], ls, c, *m),
                    lambda m, ls, c: [one_step(torch.tensor(j), *args[1:5], ls, c, m) for j in range(k)], args[7:])
            if problem:
                raise RuntimeError(f"compiled loop disagrees with the traced step: {problem}")
            loop, mode = compiled, "compiled"
        except Exception as e:  # noqa: BLE001  any spec the compiler cannot take still trains, uncompiled
            warnings.warn(f"torch_impl.fast: compiling {spec.name} failed ({type(e).__name__}: {e}); "
                          "looping the traced step uncompiled", RuntimeWarning, stacklevel=3)
    elif full and device == "cuda":
        loop, mode = _cuda_graph_loop(one_step, loop_eager, full), "cuda_graph"

    return loop, mode


def _capture(fn: Callable) -> torch.cuda.CUDAGraph:
    """fn's kernels recorded into a CUDA graph (not run); `.replay()` runs them."""
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g


def _cuda_graph_loop(one_step, loop_eager, full: int) -> Callable:
    """CUDA: the steps replayed from CUDA graphs of GRAPH_STEPS (and of 1) steps: one launch per
    graph instead of one per kernel. Captured once per set of data and model tensor addresses;
    if capturing fails, the steps run uncompiled (loop_eager)."""
    graphs: dict[tuple, tuple | None] = {}

    def steps(step, n, i, static, mut):
        def record():
            for _ in range(n):
                step(i, *static, mut)
                i.add_(1)
        return record

    def build(order2d, x, t, coefs, loss_sum, correct, mut):
        i = torch.zeros((), dtype=torch.int64, device=x.device)
        static = (order2d.clone(), x, t, coefs.clone(), loss_sum.clone(), correct.clone())

        def warm_up(step):  # PT: on a side stream before capturing, as torch.cuda.graphs asks
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):  # on copies of everything a step writes: the model is not touched
                    step(i.zero_(), *static[:4], loss_sum.clone(), correct.clone(), [m.clone() for m in mut])
            torch.cuda.current_stream().wait_stream(side)

        step = one_step
        try:  # inductor (Triton) fuses the step's ~100 small kernels into a few
            compiled = torch.compile(_fresh(one_step), fullgraph=True, dynamic=False)
            warm_up(compiled)
            problem = _disagreement(lambda m, ls, c: compiled(i.zero_(), *static[:4], ls, c, m),
                                    lambda m, ls, c: one_step(i.zero_(), *static[:4], ls, c, m), mut)
            if problem:
                raise RuntimeError(f"compiled step disagrees with the traced step: {problem}")
            step = compiled
        except Exception as e:  # noqa: BLE001  the uncompiled step, still in CUDA graphs
            warnings.warn(f"torch_impl.fast: compiling the CUDA step failed ({type(e).__name__}: {e}); "
                          "capturing it uncompiled", RuntimeWarning, stacklevel=3)
            warm_up(one_step)
        many = min(GRAPH_STEPS, full)
        return i, static, many, _capture(steps(step, many, i, static, mut)), _capture(steps(step, 1, i, static, mut))

    def loop(n_steps, order2d, x, t, coefs, loss_sum, correct, *mut):
        key = tuple(a.data_ptr() for a in (x, t, *mut))
        if key not in graphs:
            try:
                graphs[key] = build(order2d, x, t, coefs, loss_sum, correct, mut)
            except Exception as e:  # noqa: BLE001
                warnings.warn(f"torch_impl.fast: CUDA graph capture failed ({type(e).__name__}: {e}); "
                              "looping the traced step uncompiled", RuntimeWarning, stacklevel=2)
                graphs[key] = None
        if graphs[key] is None:
            return loop_eager(n_steps, order2d, x, t, coefs, loss_sum, correct, *mut)
        i, static, many, g_many, g_one = graphs[key]
        for dst, src in zip(static, (order2d, None, None, coefs, loss_sum, correct)):
            dst.copy_(src) if src is not None else None
        i.zero_()
        for _ in range(full // many):
            g_many.replay()
        for _ in range(full % many):
            g_one.replay()
        loss_sum.copy_(static[4]), correct.copy_(static[5])

    return loop


# --- section: fit ---


def fit(model: torch.nn.Module, spec: Spec, data: tuple, epochs: int | None = None,
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
    for epoch in range(epochs or spec.training.epochs):
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
    return history
