"""Inductor, adjusted for the tuned tier's compiled loop (torch_impl._tuned), and the only
file of twinbench that imports `torch._inductor` (an import-linter contract says so).
Nothing here is arithmetic: what inductor compiles for, and where its C++ wrapper puts a
loop's buffers.

The adjustments are patches of inductor's globals, installed only while a thread compiles,
loads or calls a loop (`patched`), and keyed into inductor's caches. They are process-wide
while installed: another thread compiling at that moment gets them too (consistently: the
wrapper and its cache key are installed and removed together).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import threading
import types
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

import torch

# Our options, not inductor's: removed before inductor sees the options (`inductor_config`)
KEPT = "twinbench.kept_buffers"  # loop bodies keep their buffers (`_kept_buffers_wrapper`)
O2 = "twinbench.O2"  # g++ -O2 instead of inductor's -O3 (`_o2_patches`)
SEPARATE = "cpp_wrapper_build_separate"  # inductor's: a build in two units, which we compile at once


def inductor_config(options: dict) -> dict:
    """The options inductor is given: without our own keys."""
    return {k: v for k, v in options.items() if not k.startswith("twinbench.")}


def config_patch(options: dict):
    """A context manager under which inductor's config holds `options` (a saved loop loads its
    C++ with the options it was built with)."""
    from torch._inductor import config
    return config.patch(inductor_config(options))


@functools.cache
def _aten_isa():
    """Inductor's description of the vector ISA ATen runs on (AVX2 or AVX512), taken as working
    without a probe: no AVX512-BF16 flag (the steps are float32/float64). Its class is defined
    here and named in this module, so it pickles like inductor's own; it compares unequal to
    inductor's instance of the ISA (dataclass equality is per class), str() and hash agree."""
    from torch._inductor import cpu_vec_isa
    base = {"AVX512": cpu_vec_isa.VecAVX512, "AVX2": cpu_vec_isa.VecAVX2}[torch.backends.cpu.get_cpu_capability()]
    cls = type(f"_Trusted{base.__name__}", (base,), {"__bool__": lambda self: True, "__module__": __name__})
    globals()[cls.__name__] = cls
    return cls()


def _isa_patches() -> list:
    """PT: inductor otherwise builds and dlopens a probe per candidate ISA in every new process,
    vec_isa_ok or not, on CPUs with AVX512-VNNI, AMX or AVX512-BF16 (torch 2.13): 2.3 s of a cold
    conf1 start."""
    from torch._inductor import cpu_vec_isa
    return [mock.patch.object(cpu_vec_isa, "valid_vec_isa_list", lambda: [_aten_isa()])]


def _o2_patches() -> list:
    """PT: inductor compiles its C++ with -O3; -O2 builds conf5's loop 0.3 s faster (3.9 s of
    g++) and runs it as fast: the kernels are explicit vector code (at::vec) either way."""
    from torch._inductor import cpp_builder
    optimization = cpp_builder._get_optimization_cflags

    def o2(*args, **kwargs):
        cflags, ldflags = optimization(*args, **kwargs)
        return ["O2" if flag == "O3" else flag for flag in cflags], ldflags
    return [mock.patch.object(cpp_builder, "_get_optimization_cflags", o2)]


def _parallel_build_patches() -> list:
    """PT: with `cpp_wrapper_build_separate`, inductor builds a loop as two translation units,
    the wrapper (at -O1) and the kernels, then links them, one after the other (torch 2.13);
    here the units compile at once, then the link (the last builder) runs. Each unit parses a
    heavy header (the wrapper's 1.6 s, the kernels' 1.9 s of g++ on this machine)."""
    from concurrent.futures import ThreadPoolExecutor

    from torch._inductor import codecache
    from torch.utils._filelock import FileLock

    def build(lock_path, builders):
        with FileLock(lock_path, timeout=codecache.LOCK_TIMEOUT):
            todo = [b for b in builders if not os.path.exists(b.get_target_file_path())]
            if len(todo) > 2:
                with ThreadPoolExecutor(len(todo) - 1) as pool:
                    list(pool.map(lambda b: b.build(), todo[:-1]))
                todo = todo[-1:]
            for builder in todo:
                builder.build()
    return [mock.patch.object(codecache, "_worker_compile_cpp", build)]


def _escaping(lines: list) -> set[str]:
    """The buffers of a wrapper's lines that leave a subgraph (its outputs, and every buffer
    whose storage one of them takes over, by reuse, as a view, or as an extern kernel's alias
    of its input, through any chain): these must be new each time. A subgraph with control
    flow inside it, or a buffer whose aliasing inductor cannot say, keeps nothing."""
    from torch._inductor.codegen.wrapper import EnterSubgraphLine, ExitSubgraphLine, ReinterpretLine, ReuseLine
    leaving, took, open_graphs = [], {}, []  # leaving: outputs and the buffers kept whole
    for line in lines:
        if isinstance(line, EnterSubgraphLine):
            leaving += [b.get_name() for g in open_graphs for b in g.buffers]  # nested control flow
            open_graphs.append(line.graph)
            leaving += line.graph.get_output_names()
            for buffer in line.graph.buffers:
                try:
                    took.setdefault(buffer.get_name(), []).extend(buffer.get_inputs_that_alias_output())
                except NotImplementedError:
                    leaving += [b.get_name() for b in line.graph.buffers]
        elif isinstance(line, ExitSubgraphLine):
            open_graphs.pop()
        elif isinstance(line, (ReuseLine, ReinterpretLine)):
            took.setdefault(line.reused_as.get_name(), []).append(line.node.get_name())
    escaping: set[str] = set()
    while leaving:
        name = leaving.pop()
        if name not in escaping:
            escaping.add(name)
            leaving += took.get(name, [])
    return escaping


@functools.cache
def _kept_buffers_wrapper() -> type:
    """Inductor's C++ wrapper for CPU, except that a buffer made inside a subgraph (a while_loop's
    body or condition), of static shape, that does not leave it, is allocated once per thread
    and referenced by each iteration instead of allocated and freed by it. Kept buffers live until
    their thread ends (a set per compiled loop and thread, the size of one step's intermediates).
    PT: inductor allocates every intermediate of a loop body anew per iteration, through ATen's
    allocator (posix_memalign): conf1's 4-step body made 40 per iteration, 0.14 s of a 0.44 s epoch."""
    from torch._inductor import ir
    from torch._inductor.codegen.cpp_wrapper_cpu import CppWrapperCpu
    from torch._inductor.utils import IndentedBuffer

    class _One:  # one input of a subgraph, for inductor's own prefix
        def __init__(self, inner, value):
            self.graph = types.SimpleNamespace(graph_inputs={inner: value})

    class KeptBuffersWrapper(CppWrapperCpu):
        escaping: set[str] | None = None  # set by memory_plan_reuse; None: keep nothing

        def __init__(self):
            super().__init__()
            self.borrowed: set[str] = set()  # names bound by reference: never freed or moved here

        @staticmethod
        def create(*args, **kwargs):
            return KeptBuffersWrapper()

        def memory_plan_reuse(self):
            super().memory_plan_reuse()
            self.escaping = _escaping(self.lines)

        def codegen_subgraph_prefix(self, subgraph, outer_inputs, outer_outputs):
            """A subgraph's inputs that it does not return, when named, by reference (inductor:
            a new handle per input and iteration)."""
            outputs = set(subgraph.graph.get_output_names())
            assert len(subgraph.graph.graph_inputs) == len(outer_inputs)
            for (inner, value), outer in zip(subgraph.graph.graph_inputs.items(), outer_inputs):
                if isinstance(value, ir.TensorBox) and inner not in outputs and re.fullmatch(r"\w+", outer):
                    self.writeline(f"auto& {inner} = {outer};")
                    self.borrowed.add(inner)
                else:
                    super().codegen_subgraph_prefix(_One(inner, value), [outer], outer_outputs)

        def make_buffer_free(self, buffer):
            return "" if buffer.get_name() in self.borrowed else super().make_buffer_free(buffer)

        def codegen_exact_buffer_reuse(self, old_name, new_name, del_line):
            if old_name not in self.borrowed:
                return super().codegen_exact_buffer_reuse(old_name, new_name, del_line)
            self.borrowed.add(new_name)
            return f"auto& {new_name} = {old_name};  // reuse"

        def _keepable(self, name, shape, stride, allocation_shape, is_pinned) -> bool:
            return (len(self.codegened_graph_stack) > 1 and self.escaping is not None and name not in self.escaping
                    and not is_pinned and (allocation_shape is None or list(allocation_shape) == list(shape))
                    and self.is_statically_known_list_of_ints(shape)
                    and self.is_statically_known_list_of_ints(stride))

        def make_allocation(self, name, device, dtype, shape, stride, allocation_shape=None, is_pinned=False):
            args = (name, device, dtype, shape, stride, allocation_shape, is_pinned)
            if device.type != "cpu" or not self._keepable(name, shape, stride, allocation_shape, is_pinned):
                return super().make_allocation(*args)
            lines = IndentedBuffer()
            with self._target_buf("wrapper_call", lines):
                super().make_allocation(*args)
            lines = [line.strip() for line in lines.getvalue().splitlines() if line.strip()]
            allocate = [line for line in lines if "aoti_torch_empty_strided(" in line]
            if len(allocate) != 1:
                raise RuntimeError(f"unexpected allocation of {name} by inductor: {lines}")
            for line in lines:  # the size and stride arrays (static constexpr)
                if line != allocate[0] and line != f"AtenTensorHandle {name}_handle;":
                    self.wrapper_call.writeline(line)
            once = allocate[0].replace(f"&{name}_handle", "&h")
            self.wrapper_call.writeline(f"static thread_local RAIIAtenTensorHandle {name}_kept = []() "
                                        f"{{ AtenTensorHandle h; {once} return RAIIAtenTensorHandle(h); }}();")
            self.borrowed.add(name)
            return f"auto& {name} = {name}_kept;"

    return KeptBuffersWrapper


@functools.cache
def _cache_key_pass():
    """A pass that does nothing, registered for CPU so that inductor's caches (FX graph, AOT
    autograd) key compiled code by this file: code from another wrapper is never reused."""
    from torch._inductor.custom_graph_pass import CustomGraphModulePass

    class WrapperKey(CustomGraphModulePass):
        def __call__(self, gm: torch.fx.GraphModule) -> None:
            pass

        def uuid(self) -> str:
            return "twinbench-kept-buffers-" + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return WrapperKey()


def _wrapper_patches() -> list:
    import dataclasses
    from torch._inductor.codegen import common
    common.init_backend_registration()
    cpu = dataclasses.replace(common.device_codegens["cpu"], cpp_wrapper_codegen=_kept_buffers_wrapper())
    return [_ItemPatch(common.device_codegens, "cpu", cpu), _ItemPatch(common.custom_backend_passes, "cpu",
                                                                      _cache_key_pass())]


class _ItemPatch:
    """d[key] = value until stopped, then d[key] as it was (the rest of d untouched)."""
    _absent = object()

    def __init__(self, d: dict, key, value):
        self.d, self.key, self.value, self.saved = d, key, value, self._absent

    def start(self):
        self.saved = self.d.get(self.key, self._absent)
        self.d[self.key] = self.value

    def stop(self):
        if self.saved is self._absent:
            self.d.pop(self.key, None)
        else:
            self.d[self.key] = self.saved


_LOCK = threading.Lock()
_ACTIVE: dict[str, list] = {}  # patch name -> [threads inside, its patchers]


@contextlib.contextmanager
def _shared(name: str, patches: Callable[[], list]) -> Iterator[None]:
    """Process-wide while any thread is inside (counted, so overlapping threads cannot leave it installed)."""
    with _LOCK:
        users = _ACTIVE.setdefault(name, [0, []])
        if not users[0]:
            started = []
            try:
                for p in patches():
                    p.start()
                    started.append(p)
            except BaseException:
                for p in reversed(started):  # none left installed, uncounted
                    p.stop()
                raise
            users[1] = started
        users[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            users[0] -= 1
            if not users[0]:
                for p in reversed(users[1]):
                    p.stop()


@contextlib.contextmanager
def patched(options: dict, compiling: bool = True) -> Iterator[None]:
    """While inside: with `cpp.vec_isa_ok` in options, inductor compiles for ATen's vector ISA
    (`_aten_isa`); with O2, g++ runs with -O2 (both also when loading: the build command keys
    the compiled library, so a saved loop loaded without them is built again); and when
    `compiling` (their imports take 0.7 s, which a process loading a saved loop does without):
    with KEPT, CPU loop bodies keep their buffers (`_kept_buffers_wrapper`); with SEPARATE, a
    build's two translation units compile at once."""
    with contextlib.ExitStack() as stack:
        for key, patches, always in (("cpp.vec_isa_ok", _isa_patches, True), (O2, _o2_patches, True),
                                     (KEPT, _wrapper_patches, False), (SEPARATE, _parallel_build_patches, False)):
            if options.get(key) and (compiling or always):
                stack.enter_context(_shared(key, patches))
        yield
