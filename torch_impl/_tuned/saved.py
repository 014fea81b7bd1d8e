"""Saved loops: the tuned tier's traced step kept as a module and its compiled loop saved in
the compile cache (torch.compile's `aot_compile`), so a new process loads both instead of
tracing and compiling again. Keyed by the step's spec, the example count, the options,
torch's version, torch_impl's code and the CPU."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import random
import sys
import types
from pathlib import Path
from typing import Callable, Iterator

import torch

import torch_impl
from common.config import step_key
from common.environment import cpu_key
from common.files import atomic_write
from common.spec import Spec
from torch_impl import _step
from torch_impl._tuned.inductor import config_patch, inductor_config, patched


@functools.cache
def _sources_hash() -> str:
    """What a traced step and its compiled loop depend on besides the spec: torch's version,
    torch_impl's code and the CPU, by its flags (common.environment.cpu_key: a cache directory
    may be shared between machines that both say "AMD EPYC")."""
    h = hashlib.sha256(repr((torch.__version__, torch.backends.cpu.get_cpu_capability(), cpu_key())).encode())
    for f in sorted(Path(torch_impl.__file__).parent.rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


def key(*parts) -> str:
    return hashlib.sha256(repr((_sources_hash(), *parts)).encode()).hexdigest()[:24]


def step_module(spec: Spec, cache: Path, trace: Callable[[], torch.fx.GraphModule]) -> types.ModuleType:
    """A module holding the traced step as STEP (its source kept in `cache` and read from there by
    a later process instead of calling `trace`) and torch_impl._step's loop functions, bound to it."""
    name = f"twinbench_step_{key(step_key(spec), True)}"
    path = cache / f"{name}.py"
    header = (f'"""The training step of one spec, traced by torch_impl.fast (make_fx)."""\n'
              f"import torch\nfrom torch import device, inf, nan\n\nBS, N_C = {spec.training.batch_size}, "
              f"{len(_step.scalar_names(spec))}\n")
    module = types.ModuleType(name)
    try:
        exec(compile(path.read_text(), str(path), "exec"), module.__dict__)  # saved by an earlier process
    except Exception:  # noqa: BLE001  nothing saved yet, or unreadable: trace the step now
        gm = trace()
        own = "self." not in gm.code  # PT: a step holding tensor constants stays a GraphModule (not saved)
        source = header + gm.code.replace("def forward(self, ", "def STEP(", 1) if own else header
        if own:
            atomic_write(path, lambda f: f.write(source), mode="w")
        module = types.ModuleType(name)
        exec(compile(source, str(path), "exec"), module.__dict__)
        module.STEP = module.__dict__.get("STEP", gm)
    sys.modules[name] = module  # PT: a saved loop names its globals' module; a new process imports it
    _step.bind(module.__dict__)
    return module


def saved_or_compiled(steps: types.ModuleType, options: dict, example: tuple, path: Path) -> list[Callable]:
    """Ways to get the compiled loop, to try in order: the one a previous process saved at
    `path`, else compiled now. Each gives (loop, keep): keep() saves a loop compiled now at `path`,
    for the caller to call once the loop passed its self-check (a loaded one is kept already)."""
    def load():
        from torch._guards import TracingContext, tracing
        # PT: loading its guards needs a tracing context, loading its C++ the options it was built with (2.13)
        with patched(options, compiling=False), path.open("rb") as f, tracing(TracingContext(None)), \
                config_patch(options):
            return torch.compiler.load_compiled_function(f), lambda: None

    def compile_now():
        compiled = _compile(steps, options)
        try:
            with torch.no_grad(), patched(options), _own_nonces():
                saved = compiled.aot_compile((example, {}))
        except Exception:  # noqa: BLE001  not saveable: compiled on first call, in this process only
            return compiled, lambda: None
        return saved, lambda: _save(saved, path)
    return [_recompiling(attempt, steps, options) for attempt in ([load] if path.exists() else []) + [compile_now]]


def _save(saved, path: Path) -> None:
    try:
        saved.save_compiled_function(str(path))
    except Exception:  # noqa: BLE001  not saveable: the loop serves this process only, as before
        pass


@contextlib.contextmanager
def _own_nonces() -> Iterator[None]:
    """Python's `random` seeded from the OS while inside, its sequence restored after. PT: aot_compile
    keys AOTAutograd's cache by a nonce from `random` (torch 2.13): after a seed (Keras's
    set_random_seed seeds it) a process draws the keys an earlier compile drew, and gets that
    compile's graph for another loop."""
    state = random.getstate()
    random.seed()
    try:
        yield
    finally:
        random.setstate(state)


def _compile(steps: types.ModuleType, options: dict) -> Callable:
    return torch.compile(steps.loop_while, fullgraph=True, dynamic=False, options=inductor_config(options))


def _recompiling(attempt: Callable, steps: types.ModuleType, options: dict) -> Callable:
    """attempt, whose loop, a saved compiled loop, is used until its guards refuse a call (the
    global state it was compiled under changed: grad mode, deterministic algorithms, ...); from
    then on the same loop through torch.compile, which recompiles for the new state."""
    def get():
        (saved, keep), fallback = attempt(), []

        def loop(*args):
            # PT: a saved loop (torch 2.13's AOTCompiledFunction) raises when its guards refuse;
            # torch.compile's recompiles instead
            if not fallback and hasattr(saved, "guard_check") and not saved.guard_check(*args):
                fallback.append(_compile(steps, options))
            run = fallback[0] if fallback else saved
            with patched(options, compiling=not hasattr(run, "guard_check")):  # torch.compile's compiles when called
                return run(*args)
        return loop, keep
    return get
