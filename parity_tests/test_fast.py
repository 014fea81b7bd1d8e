"""The fast variants (tf_impl/fast.py, torch_impl/fast.py) against the book loop and the
oracle: one shuffled epoch for every optimizer variant in float32 and float64, conf1 over
1,200 batch-1 steps, and the torch loop really compiled.

Both fast paths call their book optimizer's own update (Keras's `apply`; torch_impl's
`optimizers.update`, which SpecOptimizer.step applies), so a change to one coefficient of an
update rule moves fast and book alike: the comparison with the float64 oracle is what
catches it here, the fast-vs-book comparison catches a loop that drifts from the book.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import frameworks
from common.config import load_spec
from parity_tests import design as D
from parity_tests import harness as H

N_EPOCH = 160  # 10 batches of 16: an epoch with no short batch...
N_TAIL = 168   # ...and one whose last batch holds 8 (the book's own step in both fast paths)
BASE = H.replace(load_spec("conf5"), **{"training.batch_size": 16, "network.hidden_units": 16})
VARIANTS = {f"{name}-{dt}": H.replace(BASE, **{"optimizer": opt, "training.dtype": dt})
            for name, opt in D.OPTIMIZERS.items() for dt in ("float32", "float64")}


def epoch_data(spec, n: int):
    x, y, _ = H.data_pool()
    dtype = spec.training.dtype
    return x[:n].astype(dtype), y[:n], x[-200:].astype(dtype), y[-200:]


def fast_and_book(fw: str, spec, data, seed: int):
    """(fast model, book model, fast history, book history) after one epoch from the same weights."""
    fast, book = frameworks.get(fw).variant("fast"), H.impl(fw)
    w = H.canonical_weights(spec, seed)
    mq, mb = book.build_model(spec, seed=1), book.build_model(spec, seed=1)
    book.set_weights(mq, w)
    book.set_weights(mb, w)
    return mq, mb, fast.fit(mq, spec, data, epochs=1), book.fit(mb, spec, data, epochs=1), w


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
@pytest.mark.parametrize("spec", H.params(VARIANTS))
def test_fast_equals_book_and_oracle(spec, fw: str):
    """Weights and optimizer state after one fast epoch = the book's = the oracle's."""
    impl, dtype = H.impl(fw), spec.training.dtype
    n = N_TAIL if spec.optimizer.name == "adam" else N_EPOCH
    H.register_config(f"fast-{H.spec_id(spec)}")
    data = epoch_data(spec, n)
    mq, mb, hq, hb, w = fast_and_book(fw, spec, data, seed=43)
    rw, rs, losses, hits = H.ref_epoch(spec, w, data[0], data[1])
    quick, book = impl.get_weights(mq), impl.get_weights(mb)
    H.assert_close(quick, book, dtype, "trajectory", f"{fw} fast vs book weights", scale=H.scale_of(rw))
    H.assert_close(quick, rw, dtype, "trajectory", f"{fw} fast vs oracle weights")
    H.assert_close(book, rw, dtype, "trajectory", f"{fw} book vs oracle weights")
    state = {"fast": impl.get_optimizer_state(mq, spec), "book": impl.get_optimizer_state(mb, spec)}
    H.assert_close(state["fast"], state["book"], dtype, "state", f"{fw} fast vs book optimizer state",
                   scale=H.scale_of(rs))
    H.assert_close(state["fast"], rs, dtype, "state", f"{fw} fast vs oracle optimizer state")
    H.assert_close(hq[0]["loss"], float(np.mean(losses)), "float32", "loss", f"{fw} fast epoch loss vs oracle")
    assert abs(hq[0]["accuracy"] - hits.mean()) <= 1 / n + 1e-12, "train accuracy: one example of slack (near-ties)"
    H.assert_close(hq[0]["val_loss"], hb[0]["val_loss"], "float32", "loss", f"{fw} fast vs book val_loss")


N_LONG = 1200  # conf1 at batch 1: 1,200 steps, so fast and book are compared over >= 1,000 updates


@pytest.mark.parametrize("fw", H.FRAMEWORKS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_equals_book_over_1000_steps(dtype: str, fw: str):
    """conf1 (batch 1, SGD): one shuffled epoch of 1,200 steps, fast vs book, same weights."""
    spec = H.replace(load_spec("conf1"), **{"training.dtype": dtype})
    H.register_config(f"fast-long-{H.spec_id(spec)}")
    x, y, _ = H.data_pool()
    assert len(x) >= N_LONG + 500
    data = (x[:N_LONG].astype(dtype), y[:N_LONG], x[-500:].astype(dtype), y[-500:])
    mq, mb, hq, hb, _ = fast_and_book(fw, spec, data, seed=44)
    H.assert_close(H.impl(fw).get_weights(mq), H.impl(fw).get_weights(mb), dtype, "trajectory",
                   f"{fw} fast vs book over {N_LONG} steps")
    # the same predictions: counts equal (Keras's accuracy tracker holds them in float32)
    assert abs(hq[0]["accuracy"] - hb[0]["accuracy"]) < 1e-6 and hq[0]["val_accuracy"] == hb[0]["val_accuracy"]


@pytest.mark.parametrize("preset", ["conf1", "conf5"])
def test_torch_fast_loop_is_compiled_on_cpu(preset: str):
    """torch_impl.fast compiles its epoch loop (torch.compile of a while_loop) and its
    self-check against the book's step passes: mode 'compiled', not the eager fall-back."""
    import torch_impl.fast as fast
    spec = load_spec(preset)
    model = H.impl("torch").build_model(spec, seed=1)
    run = fast.compile_epoch(model, spec, 64 * 5)
    assert run.mode == "compiled"


def test_torch_fast_compile_falls_back_to_the_next_options(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """When inductor cannot compile with the first options (twinbench's adjustments), the loop
    is compiled with the next ones (inductor's own), not left uncompiled, and says so."""
    import torch_impl.fast as fast
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))  # nothing saved by an earlier run
    spec = load_spec("conf1")
    usable, tried, real_compile = fast._inductor_options()[-1], [], fast.torch.compile
    attempts = [{**usable, "no_such_inductor_option": True}, usable]

    def compile_(fn, **kw):
        tried.append(kw["options"])
        return real_compile(fn, **kw)
    monkeypatch.setattr(fast, "_inductor_options", lambda: attempts)
    monkeypatch.setattr(fast, "_LOOPS", {})
    monkeypatch.setattr(fast.torch, "compile", compile_)
    model = H.impl("torch").build_model(spec, seed=1)
    with pytest.warns(RuntimeWarning, match="compiled with inductor's own options"):
        run = fast.compile_epoch(model, spec, 64 * 5)
    assert run.mode == "compiled" and tried == attempts


def test_torch_fast_loop_saved_is_loaded_by_a_new_process(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The compiled loop is saved in the compile cache with its traced step; building it again
    (as a new process does: nothing in memory) loads both instead of tracing and compiling (nor
    installing what only a compile needs), and the loaded loop still passes the self-check
    against the book's step."""
    import torch_impl.fast as fast
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    import warnings
    spec = load_spec("conf5")
    monkeypatch.setattr(fast, "_LOOPS", {})
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert fast.compile_epoch(H.impl("torch").build_model(spec, seed=1), spec, 64 * 5).mode == "compiled"
    assert not [w for w in said if "torch_impl.fast" in str(w.message)], [str(w.message) for w in said]
    saved = sorted(p.suffix for p in (tmp_path / "torch-loops").iterdir())
    assert saved == [".bin", ".py"], saved

    def refuse(*args, **kwargs):
        raise AssertionError("traced or compiled again")
    monkeypatch.setattr(fast, "_LOOPS", {})
    monkeypatch.setattr(fast, "_trace_step", refuse)
    monkeypatch.setattr(fast.torch, "compile", refuse)
    from torch_impl import _inductor
    for compiling_only in ("_wrapper_patches", "_parallel_build_patches"):  # 0.7 s of imports
        monkeypatch.setattr(_inductor, compiling_only, refuse)
    assert fast.compile_epoch(H.impl("torch").build_model(spec, seed=2), spec, 64 * 5).mode == "compiled"


def test_torch_fast_saved_loop_recompiles_when_global_state_changes(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A loaded loop whose guards refuse the call (here: deterministic algorithms switched on
    after it was compiled) runs through torch.compile instead of failing, with the same result."""
    import torch

    import torch_impl.fast as fast
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))
    spec = load_spec("conf5")
    x, t, order = fast._check_data(spec, 64 * 5, 5, "cpu")
    runs = []
    for _ in range(2):  # the first compiles and saves, the second loads
        monkeypatch.setattr(fast, "_LOOPS", {})
        model = H.impl("torch").build_model(spec, seed=1)
        runs.append((model, fast.compile_epoch(model, spec, 64 * 5)))
    want = runs[0][1](x, t, order)
    torch.use_deterministic_algorithms(True)
    try:
        got = runs[1][1](x, t, order)
    finally:
        torch.use_deterministic_algorithms(False)
    assert [float(v) for v in got] == [float(v) for v in want]
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
spec = load_spec("conf1")
run = torch_impl.fast.compile_epoch(frameworks.get("torch").book().build_model(spec, seed=1), spec, 12)
print("mode", run.mode, "isa detections", len(probes))
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
    import torch_impl.compiled as compiled
    if "cpp.vec_isa_ok" not in compiled._inductor_options()[0]:
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
    assert "mode compiled isa detections 0" in out, out
    assert not (where / "headers").exists()  # created for any precompiled header


def test_torch_fast_loop_body_allocates_only_what_leaves_it(cold_conf1):
    """The compiled conf1 loop allocates two tensors per iteration: the condition's result and
    the carried step counter; its intermediates (~10 per step) are allocated once per thread,
    and neither they nor the loop's inputs get a new tensor handle per iteration
    (torch_impl._inductor's wrapper; inductor's own allocates them all in every iteration)."""
    out, where, _ = cold_conf1
    assert "mode compiled" in out, out
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
    assert "mode compiled isa detections 0" in warm and "g++ builds 0" in warm, warm


def test_kept_buffers_exclude_what_leaves_a_subgraph():
    """A buffer leaves a subgraph as one of its outputs, or by lending its storage to one (reused,
    viewed, or aliased by an extern kernel, through any chain): only the others may be kept
    across iterations. A subgraph holding control flow, or a buffer whose aliasing inductor
    cannot say, keeps nothing."""
    from torch._inductor.codegen.wrapper import EnterSubgraphLine, ExitSubgraphLine, ReinterpretLine, ReuseLine

    from torch_impl._inductor import _escaping

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
    """torch_impl._inductor's process-wide patches: when one of a set fails to start, those
    started are stopped and none is counted; a stopped item patch restores its key only."""
    from torch_impl import _inductor
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


_THREADS = """
import os, sys, warnings
warnings.simplefilter("error")  # the warning, if any, ends the script with its message
import tensorflow as tf
if sys.argv[1] == "started":
    tf.constant(1.0)  # TF's runtime starts here, with its default pools
import tf_impl.fast
from common.config import load_spec
import frameworks
spec = load_spec("conf1")
try:
    tf_impl.fast.compile_epoch(frameworks.get("tf").book().build_model(spec, seed=1), spec, 4)
except RuntimeWarning as w:
    print("warned:", w)
print("threads", tf.config.threading.get_intra_op_parallelism_threads())
"""


@pytest.mark.parametrize("case, env, want", [
    ("fresh", {}, "threads 1"),  # imported before TF's runtime starts: one intra-op thread
    ("fresh", {"TF_NUM_INTRAOP_THREADS": "2"}, "threads 0"),  # the user's choice stands (0: TF reads its env)
    ("started", {}, "warned: tf_impl.fast: TensorFlow's runtime started before"),
])
def test_tf_fast_runs_one_intra_op_thread(case: str, env: dict, want: str):
    """tf_impl.fast asks TF for one intra-op thread before its runtime starts (XLA splits a
    step's kernels across the pool: conf1 2x slower on 2 cores), unless the user chose, and
    says so when the runtime had started before it was imported. A fresh process each."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**{k: v for k, v in os.environ.items() if k != "TF_NUM_INTRAOP_THREADS"}, **env,
           "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _THREADS, case], env=env, capture_output=True, text=True,
                          timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert want in done.stdout, done.stdout
