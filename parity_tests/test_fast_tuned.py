"""The tuned tier of PyTorch's fast path (torch_impl._tuned, CPU, allow-listed torch releases):
its loop saved and loaded by a new process, recompiled when global state changes, a cold
process that builds only the loop (no ISA probes, no precompiled header, two units at once,
nothing built again when warm), a loop body that keeps its buffers, and the patches of
inductor installed and removed cleanly. Skipped, with the reason, where the tier does not
apply (another torch release, TWINBENCH_TUNED=0).

What these adjustments bought when they were made (2-core AMD EPYC, 2026-11-30, against
inductor's loop as it comes): PyTorch fast conf1 0.447 -> 0.311 s/epoch, a new process's cold
first epoch 10.3 -> 6.8 s; against today's public `loop` tier: bench/README.md, "Tiers"."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.config import load_spec
from parity_tests import harness as H


@pytest.fixture(autouse=True)
def tuned_applies(monkeypatch):
    from torch_impl import _tuned
    if _tuned.unavailable("cpu"):
        pytest.skip(f"tuned tier: {_tuned.unavailable('cpu')}")
    import torch_impl.fast as fast
    monkeypatch.setattr(fast, "_LOOPS", {})


def test_torch_fast_loop_saved_is_loaded_by_a_new_process(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The compiled loop is saved in the compile cache with its traced step; building it again
    (as a new process does: nothing in memory) loads both instead of tracing and compiling (nor
    installing what only a compile needs), and the loaded loop still passes the self-check
    against the book's step."""
    import warnings

    import torch

    import torch_impl.fast as fast
    from torch_impl import _step
    from torch_impl._tuned import inductor
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    spec = load_spec("conf5")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert fast.compile_epoch(H.impl("torch").build_model(spec, seed=1), spec, 64 * 5).tier == "tuned"
    assert not [w for w in said if "torch_impl.fast" in str(w.message)], [str(w.message) for w in said]
    saved = sorted(p.suffix for p in (tmp_path / "torch-loops").iterdir())
    assert saved == [".bin", ".py"], saved

    def refuse(*args, **kwargs):
        raise AssertionError("traced or compiled again")
    monkeypatch.setattr(fast, "_LOOPS", {})
    monkeypatch.setattr(_step, "_trace", refuse)
    monkeypatch.setattr(torch, "compile", refuse)
    for compiling_only in ("_wrapper_patches", "_parallel_build_patches"):  # 0.7 s of imports
        monkeypatch.setattr(inductor, compiling_only, refuse)
    assert fast.compile_epoch(H.impl("torch").build_model(spec, seed=2), spec, 64 * 5).tier == "tuned"


def test_torch_fast_saved_loop_recompiles_when_global_state_changes(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A loaded loop whose guards refuse the call (here: deterministic algorithms switched on
    after it was compiled) runs through torch.compile instead of failing, with the same result."""
    import torch

    import torch_impl.fast as fast
    from common.selfcheck import check_data
    from torch_impl.losses import one_hot
    from torch_impl.training import as_inputs
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    spec = load_spec("conf5")
    x, labels, order = check_data(spec, 64 * 5, 5)
    x, t = as_inputs(spec, x), one_hot(spec, labels)
    runs = []
    for _ in range(2):  # the first compiles and saves, the second loads
        monkeypatch.setattr(fast, "_LOOPS", {})
        model = H.impl("torch").build_model(spec, seed=1)
        runs.append((model, fast.compile_epoch(model, spec, 64 * 5)))
        assert runs[-1][1].tier == "tuned"
    want = runs[0][1](x, t, order)
    torch.use_deterministic_algorithms(True)
    try:
        got = runs[1][1](x, t, order)
    finally:
        torch.use_deterministic_algorithms(False)
    assert got == want
    a, b = (H.impl("torch").get_weights(m) for m, _ in runs)
    assert all(np.array_equal(a[k], b[k]) for k in a)


_COLD = """
import sys
import torch._inductor.codecache as codecache
from torch._inductor import cpu_vec_isa
codecache._HEADER_DIR = sys.argv[1]  # where inductor would put a precompiled header
probes = []
probe = cpu_vec_isa.valid_vec_isa_list  # inductor's ISA detection (builds and loads a probe per ISA)
cpu_vec_isa.valid_vec_isa_list = lambda: probes.append("ran") or probe()
import time
from torch._inductor import cpp_builder
build, builds = cpp_builder.CppBuilder.build, []
def spy(self):  # when each g++ ran, and at which optimization levels
    began = time.perf_counter()
    build(self)
    levels = [f for f in self.get_command_line().split() if f in ("-O1", "-O2", "-O3")]
    builds.append((began, time.perf_counter(), levels))
cpp_builder.CppBuilder.build = spy
import frameworks, torch_impl.fast
from common.config import load_spec
frameworks.configure(("torch",))
spec = load_spec("conf1")
run = torch_impl.fast.compile_epoch(frameworks.get("torch").book().build_model(spec, seed=1), spec, 12)
print("tier", run.tier, "isa detections", len(probes))
print("g++ levels", sorted({level for *_, levels in builds for level in levels}))
units = sorted(builds)[:2]  # the translation units (the link comes after them)
print("units overlap", len(builds) == 3 and units[1][0] < units[0][1])
print("g++ builds", len(builds))
"""


@pytest.fixture(scope="module")
def cold_conf1(tmp_path_factory) -> tuple[str, Path, str]:
    """A new process compiling conf1's loop with empty caches, then another on the caches it
    left: (the first's output, its directory, the second's output)."""
    import os
    import subprocess
    import sys
    from torch_impl import _tuned
    if _tuned.unavailable("cpu"):  # a module fixture: set up before the autouse one that skips
        pytest.skip(f"tuned tier: {_tuned.unavailable('cpu')}")
    if "cpp.vec_isa_ok" not in _tuned.options():
        pytest.skip("ATen's vector ISA is not AVX2/AVX512, or TORCHINDUCTOR_VEC_ISA_OK is set: inductor probes")
    where = tmp_path_factory.mktemp("cold")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TWINBENCH_COMPILE_CACHE": str(where / "cache"),
           "TORCHINDUCTOR_CACHE_DIR": str(where / "cache" / "inductor")}
    outs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _COLD, str(where / "headers")], env=env, capture_output=True,
                              text=True, timeout=600, cwd=root)
        assert done.returncode == 0, done.stderr[-2000:]
        outs.append(done.stdout)
    return outs[0], where, outs[1]


def test_torch_fast_cold_compile_builds_only_the_loop(cold_conf1):
    """A new process compiling with empty caches builds the loop and nothing else: inductor's
    ISA detection does not run (it builds and loads a probe per candidate ISA, seconds of a
    cold start) and no precompiled header is made (141 MB, outside the cache directory). The
    tests on this fixture are skipped where ATen runs without AVX2/AVX512 (then inductor's
    probes choose the ISA)."""
    out, where, _ = cold_conf1
    assert "tier tuned isa detections 0" in out, out
    assert not (where / "headers").exists()  # created for any precompiled header


def test_torch_fast_loop_body_allocates_only_what_leaves_it(cold_conf1):
    """The compiled conf1 loop allocates two tensors per iteration: the condition's result and
    the carried step counter; its intermediates (~10 per step) are allocated once per thread,
    and neither they nor the loop's inputs get a new tensor handle per iteration
    (torch_impl._tuned.inductor's wrapper; inductor's own allocates them all in every iteration)."""
    out, where, _ = cold_conf1
    assert "tier tuned" in out, out
    sources = [p.read_text() for p in (where / "cache" / "inductor").rglob("*.cpp") if "while (1)" in p.read_text()]
    assert len(sources) == 1, len(sources)
    loop = sources[0][sources[0].index("while (1)"):]
    fresh = [line for line in loop.splitlines() if "aoti_torch_empty_strided(" in line and "_kept = " not in line]
    assert len(fresh) == 2, fresh
    assert "aoti_torch_assign_tensors_out" not in loop  # inputs and kept buffers by reference, no new handles
    assert loop.count("_kept = ") >= 10, loop.count("_kept = ")


def test_torch_fast_loop_is_built_in_two_units_at_once(cold_conf1):
    """g++ builds the loop's wrapper (-O1) and kernels (-O2, not inductor's -O3, which takes
    longer for the same speed) at the same time, then links them."""
    out, _, _ = cold_conf1
    assert "g++ levels ['-O1', '-O2']" in out, out
    assert "units overlap True" in out, out


def test_torch_fast_warm_process_builds_nothing(cold_conf1):
    """A second process on the caches the first left loads the saved loop and its library: no
    g++ at all (a library built with other flags than the loading process's would be built again)."""
    _, _, warm = cold_conf1
    assert "tier tuned isa detections 0" in warm and "g++ builds 0" in warm, warm


def test_kept_buffers_exclude_what_leaves_a_subgraph():
    """A buffer leaves a subgraph as one of its outputs, or by lending its storage to one (reused,
    viewed, or aliased by an extern kernel, through any chain): only the others may be kept
    across iterations. A subgraph holding control flow, or a buffer whose aliasing inductor
    cannot say, keeps nothing."""
    from torch._inductor.codegen.wrapper import EnterSubgraphLine, ExitSubgraphLine, ReinterpretLine, ReuseLine

    from torch_impl._tuned.inductor import _escaping

    class Buffer:
        def __init__(self, name, aliases=()):
            self.name, self.aliases = name, aliases

        def get_name(self):
            return self.name

        def get_inputs_that_alias_output(self):
            if self.aliases is None:
                raise NotImplementedError
            return self.aliases

    class Graph:
        def __init__(self, buffers, outputs):
            self.buffers, self.outputs = buffers, outputs

        def get_output_names(self):
            return self.outputs

    class Wrapper:
        computed_sizes: set = set()

        def push_computed_sizes(self, sizes):
            pass

        def pop_computed_sizes(self):
            return set()
    b = {n: Buffer(n) for n in ("a", "b", "c", "d", "e", "out")}
    b["v"] = Buffer("v", aliases=["e"])  # e.g. view_as_real(e): an extern kernel returning its input's storage
    body = Graph(list(b.values()), ["out", "v"])
    lines = [EnterSubgraphLine(Wrapper(), body), ReuseLine(None, b["d"], b["c"]),
             ReinterpretLine(None, b["a"], b["b"], None), ReuseLine(None, b["b"], b["out"]),
             ExitSubgraphLine(Wrapper())]
    assert _escaping(lines) == {"out", "b", "a", "v", "e"}
    unknown = Graph([Buffer("x"), Buffer("y", aliases=None)], [])
    assert _escaping([EnterSubgraphLine(Wrapper(), unknown), ExitSubgraphLine(Wrapper())]) == {"x", "y"}
    outer, inner = Graph([Buffer("p"), Buffer("q")], []), Graph([Buffer("r")], [])
    nested = [EnterSubgraphLine(Wrapper(), outer), EnterSubgraphLine(Wrapper(), inner), ExitSubgraphLine(Wrapper()),
              ExitSubgraphLine(Wrapper())]
    assert {"p", "q"} <= _escaping(nested)


def test_a_patch_of_inductor_that_fails_to_start_leaves_nothing_installed():
    """torch_impl._tuned.inductor's process-wide patches: when one of a set fails to start, those
    started are stopped and none is counted; a stopped item patch restores its key only."""
    from torch_impl._tuned import inductor as _inductor
    d = {"cpu": "theirs"}

    class Failing:
        def start(self):
            raise RuntimeError("cannot patch")

        def stop(self):
            raise AssertionError("stopped without having started")
    with pytest.raises(RuntimeError, match="cannot patch"):
        with _inductor._shared("test", lambda: [_inductor._ItemPatch(d, "cpu", "ours"), Failing()]):
            pass
    assert d == {"cpu": "theirs"} and _inductor._ACTIVE["test"][0] == 0
    with _inductor._shared("test", lambda: [_inductor._ItemPatch(d, "cpu", "ours")]):
        d["cuda"] = "registered meanwhile"
        assert d["cpu"] == "ours"
    assert d == {"cpu": "theirs", "cuda": "registered meanwhile"}


def test_saved_loops_are_keyed_by_the_cpus_flags(monkeypatch: pytest.MonkeyPatch):
    """A compile cache shared by machines (CI's, a Dask cluster's) holds each CPU's loops apart:
    the key takes the CPU's flags (common.environment.cpu_key), not its name."""
    from torch_impl._tuned import saved
    here = saved.key("step", 60_000)
    saved._sources_hash.cache_clear()
    monkeypatch.setattr(saved, "cpu_key", lambda: "another CPU, same model name")
    try:
        assert saved.key("step", 60_000) != here
    finally:
        saved._sources_hash.cache_clear()


def test_saved_loops_of_a_seeded_process_are_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A process that seeds Python's `random` (keras.utils.set_random_seed does) compiles each
    loop to its own code: torch 2.13's aot_compile keys AOTAutograd's cache by a nonce drawn from
    that generator, so the same seed drew the same key for two loops, and the second loaded the
    first's compiled graph (another spec's shapes). The caller's sequence is left as it was."""
    import random

    import torch_impl.fast as fast
    for i, spec in enumerate((H.replace(load_spec("conf5"), **{"training.batch_size": 16}), load_spec("conf5"))):
        monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path / str(i)))  # nothing saved: both compile
        monkeypatch.setattr(fast, "_LOOPS", {})
        random.seed(0)
        assert fast.compile_epoch(H.impl("torch").build_model(spec, seed=1), spec, 64 * 5).tier == "tuned"
        assert random.random() == random.Random(0).random()


def test_a_loop_that_fails_its_self_check_is_not_saved(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A loop compiled now is saved for later processes only once it passed the self-check; one
    that failed it leaves nothing for them to load (its traced step is kept: it is the book's)."""
    from torch_impl import _step, _tuned
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    spec = load_spec("conf5")
    model = H.impl("torch").build_model(spec, seed=1)

    def refuse(loop):
        raise RuntimeError("the built epoch disagrees with the book's step (planted)")
    with pytest.raises(RuntimeError, match="planted"):
        _tuned.build(model, spec, 64 * 5, lambda: _step.trace(model, spec, decompose=True), refuse)
    assert [p.suffix for p in (tmp_path / "torch-loops").iterdir()] == [".py"]
