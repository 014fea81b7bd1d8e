"""The epochs that torch_impl.fast's tiers build: a loop over the epoch's full batches (the
traced step in a compiled `torch.while_loop`, or called per batch: torch_impl._step, and
on CUDA replayed from CUDA graphs: torch_impl._graphs), the book's step looped from Python,
and the self-check each built epoch passes before it trains.

Nothing here is arithmetic: the step is the book's (`training.train_batch`, traced in
torch_impl._step); the loop only indexes the batch and accumulates the loss and the count.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch

from common import interrupts
from common.selfcheck import CHECK_STEPS, After, check_data, disagreement
from common.spec import Spec
from common.tiers import Tier
from torch_impl import _step, _tuned
from torch_impl.losses import one_hot
from torch_impl.model import get_weights, set_weights
from torch_impl.optimizers import get_optimizer_state, set_optimizer_state
from torch_impl.training import as_inputs, train_batch

TRACE = frozenset({"tracing the step"})  # the prerequisite of every tier but the book's

# --- section: tiers ---


def tiers(model: torch.nn.Module, spec: Spec, n_examples: int) -> list[Tier]:
    """The ways to build the epoch, to try in order: the tuned loop (CPU, allow-listed torch:
    torch_impl._tuned); then public APIs: the compiled `torch.while_loop` (CPU), the compiled
    step replayed from CUDA graphs (CUDA), the compiled step per batch, the traced step
    uncompiled; last the book's step from Python. Each built loop passed `checked`."""
    device = model.device
    trace = functools.cache(lambda: _step.trace(model, spec, decompose=device == "cpu"))
    check = lambda loop: checked(model, spec, n_examples, loop)  # noqa: E731
    epoch_of = lambda loop: epoch_function(model, spec, n_examples, loop)  # noqa: E731

    def public(how: str) -> Callable[[], Callable]:
        return lambda: epoch_of(check(_step.make_loop(how, spec, trace(), device)))

    def unless(applies: bool, what: str) -> Callable[[], str | None]:
        return lambda: held or _unless(applies, what)
    held = _held_constant(spec)
    cpu_loop = device == "cpu" and hasattr(torch, "while_loop")  # PT: public from torch 2.5 (README's table)
    return [Tier("tuned", lambda: epoch_of(_tuned.build(model, spec, n_examples, trace, check)),
                 lambda: held or _tuned.unavailable(device), TRACE),
            Tier("loop", public("loop"), unless(cpu_loop, "a CPU loop on torch.while_loop"), TRACE),
            Tier("graphs", public("graphs"), unless(device == "cuda", "CUDA graphs"), TRACE),
            Tier("step", public("step"), unless(True, ""), TRACE), Tier("eager", public("eager"), unless(True, ""), TRACE),
            Tier("book", lambda: book_epoch(model, spec, n_examples))]


def _held_constant(spec: Spec) -> str | None:
    """Why the traced step cannot serve this spec: it holds as constants what the book's step
    reads anew each step or epoch (StepLR's rate; the step count of the shared dropout masks, and
    an image's shape, for any stack but the chapter's MLP: not traced yet, issue 31, step 7)."""
    if spec.network.chapter_mlp is None:
        return "a layer stack other than the chapter's MLP (the traced step is the MLP's so far)"
    return "a learning rate that decays (training.schedule)" if spec.training.schedule.gamma != 1.0 else None


def _unless(applies: bool, what: str) -> str | None:
    return None if applies else f"{what} does not apply here"


# --- section: epochs ---


def _book_steps(model: torch.nn.Module, spec: Spec, x, t, order: torch.Tensor) -> tuple[float, int]:
    """The book's step on each batch of x[order], from Python: (loss sum, correct count)."""
    loss_sum, correct, bs = 0.0, 0, spec.training.batch_size
    if not len(order):  # PT: split() of an empty tensor still yields one (empty) batch
        return loss_sum, correct
    model.train()
    with torch.enable_grad():  # PT: the caller may run under no_grad; the book's step needs autograd
        for rows in order.split(bs):
            interrupts.check()
            loss, z = train_batch(model, spec, x[rows], t[rows])
            loss_sum += loss.item() * len(rows)
            correct += int((z.argmax(-1) == t[rows].argmax(-1)).sum())
    return loss_sum, correct


def epoch_function(model: torch.nn.Module, spec: Spec, n_examples: int, loop: Callable) -> Callable:
    """epoch(x, t, order, n_steps, first) -> (loss_sum, correct): `loop` (torch_impl._step's loop
    signature) over full batches first .. n_steps - 1 of x[order] in place on the model's tensors,
    and the last, smaller batch with the book's step when n_steps is every full batch."""
    bs, device = spec.training.batch_size, model.device
    full = n_examples // bs

    def epoch(x, t, order, n_steps: int = full, first: int = 0) -> tuple[float, int]:
        order = torch.as_tensor(order, device=x.device)
        args = _step.loop_args(spec, n_steps - first, x, t, order, _step.mutables(model), first)
        model.train()
        with _step.one_thread(device):  # the tail too: a 2-thread op between loops leaves OpenMP threads spinning
            with torch.no_grad():  # PT: while_loop may mutate its inputs only without autograd
                loop(*args)
            tail = _book_steps(model, spec, x, t, order[full * bs:]) if n_steps == full else (0.0, 0)
        return float(args[4]) + tail[0], int(args[5]) + tail[1]
    epoch.loop = loop  # PT: the loop takes the model's tensors as inputs: models of one spec share it
    return epoch


def book_epoch(model: torch.nn.Module, spec: Spec, n_examples: int) -> Callable:
    """The same epoch as epoch_function's, the book's step called from Python per batch."""
    full = n_examples // spec.training.batch_size

    def epoch(x, t, order, n_steps: int = full, first: int = 0) -> tuple[float, int]:
        bs = spec.training.batch_size
        stop = n_examples if n_steps == full else n_steps * bs
        return _book_steps(model, spec, x, t, torch.as_tensor(order[first * bs:stop], device=x.device))
    epoch.loop = None
    return epoch


# --- section: self_check ---


def checked(model: torch.nn.Module, spec: Spec, n_examples: int, loop: Callable) -> Callable:
    """`loop`, after CHECK_STEPS of it (on inputs shaped like the real epoch's) agreed with as
    many of the book's steps from the same weights; RuntimeError if not. The model's weights
    and optimizer state are left as they were."""
    k = min(n_examples // spec.training.batch_size, CHECK_STEPS)
    x, labels, order = check_data(spec, n_examples, k)
    xs, ts = as_inputs(spec, x, model.device), one_hot(spec, labels).to(model.device)
    start = get_weights(model), get_optimizer_state(model, spec)
    runs = []
    for epoch in (epoch_function(model, spec, n_examples, loop), book_epoch(model, spec, n_examples)):
        loss_sum, correct = epoch(xs, ts, order, k)
        runs.append(After(get_weights(model), get_optimizer_state(model, spec), loss_sum, correct))
        set_weights(model, start[0])
        set_optimizer_state(model, spec, start[1])
    problem = disagreement(spec, start[0], *runs)
    if problem:
        raise RuntimeError(f"the built epoch disagrees with the book's step: {problem}")
    return loop
