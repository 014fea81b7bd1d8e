"""Compiled code for torch_impl.fast: the traced step kept as a module, the epoch loop around
it compiled by inductor and saved in the compile cache, and the options and threads it runs with.

Nothing here is arithmetic: the step is torch_impl's (traced in torch_impl.fast), the loop
below only indexes the batch and accumulates the loss and the count.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import types
from pathlib import Path
from typing import Callable

import torch

from common.config import step_key
from common.environment import compile_cache_dir, cpu_model
from common.files import atomic_write
from common.spec import Spec
from torch_impl._inductor import KEPT, O2, SEPARATE, inductor_config, patched
from torch_impl.optimizers import _step_scalars

# PT: inductor's caches (FX graphs, AOT autograd, compiled code) in the twinbench cache, so a new
# process loads a compiled epoch instead of compiling it again (read when inductor first compiles)
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir() / "inductor"))


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


def _fresh(fn, namespace: dict | None = None):
    """fn with its own code object (torch.compile caches, and limits recompiles, per code object),
    running with `namespace` as its globals when given (a step module's)."""
    return types.FunctionType(fn.__code__.replace(), fn.__globals__ if namespace is None else namespace, fn.__name__,
                              fn.__defaults__, fn.__closure__)


def _scalar_names(spec: Spec) -> list[str]:
    """The names of the optimizer's per-step scalars (`_step_scalars`), in the order a step takes them."""
    return list(_step_scalars(spec, torch.ones(())))


def _inductor_options() -> list[dict]:
    """Inductor's options, to try in order: C++ wrapper; the batch rows come from a permutation
    made here, so no per-element bounds checks; no precompiled header (inductor builds a 141 MB
    one per Python environment, in 4.8 s, outside its cache directory, to save 1.2 s per
    compile) and no line tables (0.3 s per compile). First with our adjustments of inductor
    (torch_impl._inductor): loop bodies keep their buffers, and the vector ISA that ATen itself
    runs on is taken as working (`cpp.vec_isa_ok`), g++ at -O2 on the wrapper and the kernels
    at once (`cpp_wrapper_build_separate`); then, should that compile fail, without them."""
    options = {"cpp_wrapper": True, "assert_indirect_indexing": False, "cpp_cache_precompile_headers": False,
               "aot_inductor.enable_line_tables": False}
    ours = {KEPT: True, O2: True, SEPARATE: True}
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") and "TORCHINDUCTOR_VEC_ISA_OK" not in os.environ:
        ours["cpp.vec_isa_ok"] = True  # else the user's choice stands, or the ISA is not one we describe
    return [{**options, **ours}, options]


# The loop around the traced step, written once. These functions run with the globals of a step
# module (`_step_module`: STEP, the traced step, and BS, N_C), so that a compiled loop
# saved to disk names only things a new process can import.


def _one_step(i, order2d, x, t, loss_sum, correct, state):
    """Step number i (a device tensor): gather the batch and the step's scalars on device,
    update in place. state: the mutables, then the scalar tables."""
    rows = order2d.index_select(0, i.reshape(1)).reshape(BS)  # noqa: F821
    scalars = [table.index_select(0, i.reshape(1)).reshape(()) for table in state[len(state) - N_C:]]  # noqa: F821
    loss, c = STEP(*state[:len(state) - N_C], *scalars, x.index_select(0, rows), t.index_select(0, rows))  # noqa: F821
    loss_sum.add_(loss.to(torch.float64) * BS)  # noqa: F821  PT: what the book's loss.item() * len(xb) adds, on device
    correct.add_(c)


def _loop_eager(n_steps, order2d, x, t, loss_sum, correct, *state):
    i = torch.zeros((), dtype=torch.int64, device=x.device)
    for _ in range(int(n_steps)):
        _one_step(i, order2d, x, t, loss_sum, correct, state)
        i.add_(1)


def _loop_compiled(n_steps, order2d, x, t, loss_sum, correct, *state):
    """One step per iteration. Measured on the 2-core VM (bench/README, "Start-up"), with loop
    bodies keeping their buffers: conf1 0.30-0.31 s/epoch, cold first epoch 6.9-7.5 s; 4 steps
    unrolled per iteration ran 0.27 s (one step's update fused with the next one's forward
    pass) but started in 9.7 s. Unrolling paid while every step allocated its buffers."""
    from torch._higher_order_ops.while_loop import while_loop

    def body(i):
        _one_step(i, order2d, x, t, loss_sum, correct, state)
        return (i + 1,)

    i = torch.zeros((), dtype=torch.int64, device=x.device)
    return while_loop(lambda i: i < n_steps, body, (i,))  # returned, or it is dead code


@functools.cache
def _sources_hash() -> str:
    """What a traced step and its compiled loop depend on besides the spec: torch's version,
    torch_impl's code and the CPU (a cache directory may be shared between machines)."""
    h = hashlib.sha256(repr((torch.__version__, torch.backends.cpu.get_cpu_capability(), cpu_model())).encode())
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


def _key(*parts) -> str:
    return hashlib.sha256(repr((_sources_hash(), *parts)).encode()).hexdigest()[:24]


def _step_module(model: torch.nn.Module, spec: Spec, decompose: bool, cache: Path | None,
                 trace: Callable) -> types.ModuleType:
    """A module holding the step traced by `trace(model, spec, decompose)` as STEP (its source
    kept in `cache`, if given, and read from there by a later process instead of tracing again)
    and the loop functions above."""
    bs, n_c = spec.training.batch_size, len(_scalar_names(spec))
    name = f"twinbench_step_{_key(step_key(spec), decompose)}"
    path = cache / f"{name}.py" if cache else None
    header = (f'"""The training step of one spec, traced by torch_impl.fast (make_fx)."""\n'
              f"import torch\nfrom torch import device, inf, nan\n\nBS, N_C = {bs}, {n_c}\n")
    module = types.ModuleType(name)
    try:
        exec(compile(path.read_text(), str(path), "exec"), module.__dict__)  # saved by an earlier process
    except Exception:  # noqa: BLE001  no cache, nothing saved yet, or unreadable: trace the step now
        with _one_thread(model.device):
            gm = trace(model, spec, decompose)
        own = "self." not in gm.code  # PT: a step holding tensor constants stays a GraphModule (not saved)
        source = header + gm.code.replace("def forward(self, ", "def STEP(", 1) if own else header
        if path and own:
            atomic_write(path, lambda f: f.write(source), mode="w")
        module = types.ModuleType(name)
        exec(compile(source, str(path or name), "exec"), module.__dict__)
        module.STEP = module.__dict__.get("STEP", gm)
    sys.modules[name] = module
    for fn in (_one_step, _loop_eager, _loop_compiled):
        setattr(module, fn.__name__, _fresh(fn, module.__dict__))
    return module


def _saved_or_compiled(steps: types.ModuleType, options: dict, example: tuple, path: Path) -> list[Callable]:
    """Ways to get the compiled loop, to try in order: the one a previous process saved at
    `path` (torch.compile's aot_compile), else compiled now and saved there."""
    def load():
        from torch._guards import TracingContext, tracing
        # PT: loading its guards needs a tracing context, loading its C++ the options it was built with (2.13)
        config = torch._inductor.config.patch(inductor_config(options))
        with patched(options, compiling=False), path.open("rb") as f, tracing(TracingContext(None)), config:
            return torch.compiler.load_compiled_function(f)

    def compile_now():
        compiled = _compile(steps, options)
        try:
            with torch.no_grad(), patched(options):
                saved = compiled.aot_compile((example, {}))
            saved.save_compiled_function(str(path))
            return saved
        except Exception:  # noqa: BLE001  not saveable: compiled on first call, in this process only
            return compiled
    return [_recompiling(attempt, steps, options) for attempt in ([load] if path.exists() else []) + [compile_now]]


def _compile(steps: types.ModuleType, options: dict) -> Callable:
    return torch.compile(steps._loop_compiled, fullgraph=True, dynamic=False, options=inductor_config(options))


def _recompiling(attempt: Callable, steps: types.ModuleType, options: dict) -> Callable:
    """attempt, whose result, a saved compiled loop, is used until its guards refuse a call (the
    global state it was compiled under changed: grad mode, deterministic algorithms, ...); from
    then on the same loop through torch.compile, which recompiles for the new state."""
    def get():
        saved, fallback = attempt(), []

        def loop(*args):
            # PT: a saved loop (torch 2.13's AOTCompiledFunction) raises when its guards refuse;
            # torch.compile's recompiles instead
            if not fallback and hasattr(saved, "guard_check") and not saved.guard_check(*args):
                fallback.append(_compile(steps, options))
            run = fallback[0] if fallback else saved
            with patched(options, compiling=not hasattr(run, "guard_check")):  # torch.compile's compiles when called
                return run(*args)
        return loop
    return get
