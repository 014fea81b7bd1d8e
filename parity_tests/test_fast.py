"""The fast variants (tf_impl/fast.py, torch_impl/fast.py) against the book loop and the
oracle, on every tier path a machine takes: TF's XLA epoch, PyTorch's tuned loop (on the
torch releases it is allow-listed for) and PyTorch's public tiers (TWINBENCH_TUNED=0).
One shuffled epoch for every optimizer variant in float32 and float64, and conf1 over
1,200 batch-1 steps; each test also asserts the tier that ran, so a silent fall-back to a
slower tier fails. Then each tier's failure, forced: the next tier runs, with one warning.

Both fast paths call their book optimizer's own update (Keras's `apply`; torch_impl's
`optimizers.update`, which SpecOptimizer.step applies), so a change to one coefficient of an
update rule moves fast and book alike: the comparison with the float64 oracle is what
catches it here, the fast-vs-book comparison catches a loop that drifts from the book.
"""
from __future__ import annotations

import warnings

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
PATHS = [("tf", "xla"), ("torch", "tuned"), ("torch", "public")]


def public_torch_tier() -> str:
    import torch
    return "loop" if hasattr(torch, "while_loop") else "step"


@pytest.fixture(params=PATHS, ids=[f"{fw}-{path}" for fw, path in PATHS])
def path(request, monkeypatch) -> tuple[str, str]:
    """(framework, the tier its fast fit must report): PyTorch's tuned tier where its torch
    release is allow-listed (skipped elsewhere, by design), its public tiers with the tuned
    one switched off."""
    fw, which = request.param
    if fw == "torch":
        import torch_impl.fast
        from torch_impl import _tuned
        monkeypatch.setattr(torch_impl.fast, "_LOOPS", {})  # built anew under this path's settings
        if which == "public":
            monkeypatch.setenv("TWINBENCH_TUNED", "0")
            return fw, public_torch_tier()
        if _tuned.unavailable("cpu"):
            pytest.skip(f"tuned tier: {_tuned.unavailable('cpu')}")
    return fw, which


def epoch_data(spec, n: int):
    x, y, _ = H.data_pool()
    dtype = spec.training.dtype
    return x[:n].astype(dtype), y[:n], x[-200:].astype(dtype), y[-200:]


def fast_and_book(fw: str, spec, data, seed: int):
    """(fast model, book model, fast history, book history, weights) after one epoch from the same weights."""
    fast, book = frameworks.get(fw).variant("fast"), H.impl(fw)
    w = H.canonical_weights(spec, seed)
    mq, mb = book.build_model(spec, seed=1), book.build_model(spec, seed=1)
    book.set_weights(mq, w)
    book.set_weights(mb, w)
    return mq, mb, fast.fit(mq, spec, data, epochs=1), book.fit(mb, spec, data, epochs=1), w


@pytest.mark.parametrize("spec", H.params(VARIANTS))
def test_fast_equals_book_and_oracle(spec, path: tuple[str, str]):
    """Weights and optimizer state after one fast epoch = the book's = the oracle's."""
    fw, tier = path
    impl, dtype = H.impl(fw), spec.training.dtype
    n = N_TAIL if spec.optimizer.name == "adam" else N_EPOCH
    H.register_config(f"fast-{H.spec_id(spec)}")
    data = epoch_data(spec, n)
    mq, mb, hq, hb, w = fast_and_book(fw, spec, data, seed=43)
    assert hq[0]["tier"] == tier, hq[0]
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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_equals_book_over_1000_steps(dtype: str, path: tuple[str, str]):
    """conf1 (batch 1, SGD): one shuffled epoch of 1,200 steps, fast vs book, same weights."""
    fw, tier = path
    spec = H.replace(load_spec("conf1"), **{"training.dtype": dtype})
    H.register_config(f"fast-long-{H.spec_id(spec)}")
    x, y, _ = H.data_pool()
    assert len(x) >= N_LONG + 500
    data = (x[:N_LONG].astype(dtype), y[:N_LONG], x[-500:].astype(dtype), y[-500:])
    mq, mb, hq, hb, _ = fast_and_book(fw, spec, data, seed=44)
    assert hq[0]["tier"] == tier, hq[0]
    H.assert_close(H.impl(fw).get_weights(mq), H.impl(fw).get_weights(mb), dtype, "trajectory",
                   f"{fw} fast vs book over {N_LONG} steps")
    # the same predictions: counts equal (Keras's accuracy tracker holds them in float32)
    assert abs(hq[0]["accuracy"] - hb[0]["accuracy"]) < 1e-6 and hq[0]["val_accuracy"] == hb[0]["val_accuracy"]


# --- each tier's failure, forced: the next tier runs, with one warning ---


def _from(tiers, first: str):
    """The tier list from `first` on (the tiers before it would build and hide the failure)."""
    names = [t.name for t in tiers]
    return tiers[names.index(first):]


def _raise(*args, **kwargs):
    raise RuntimeError("forced failure")


def _built_with_warnings(fw: str, spec, n: int):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        run = frameworks.get(fw).fast().compile_epoch(H.impl(fw).build_model(spec, seed=1), spec, n)
    return run, [str(w.message) for w in said if f"{frameworks.get(fw).package}.fast" in str(w.message)]


@pytest.mark.parametrize("broken, want", [("tuned", "loop"), ("loop", "step"), ("step", "eager"),
                                          ("eager", "book"), ("tracing", "book")])
def test_torch_a_failing_tier_drops_to_the_next(broken: str, want: str, monkeypatch, tmp_path):
    import torch_impl.fast as fast
    from torch_impl import _step, _tuned, compiled
    monkeypatch.setenv("TWINBENCH_COMPILE_CACHE", str(tmp_path))  # nothing saved by an earlier run
    monkeypatch.setattr(fast, "_LOOPS", {})
    if _tuned.unavailable("cpu") and broken in ("tuned", "tracing"):
        pytest.skip(f"tuned tier: {_tuned.unavailable('cpu')}")
    import torch
    if broken == "loop" and not hasattr(torch, "while_loop"):
        pytest.skip(f"torch {torch.__version__} has no public torch.while_loop: the loop tier is not tried")
    real_tiers, real_make_loop = compiled.tiers, _step.make_loop
    first = "tuned" if broken == "tracing" else broken
    monkeypatch.setattr(compiled, "tiers", lambda *a: _from(real_tiers(*a), first))
    if broken == "tuned":
        monkeypatch.setattr(_tuned, "build", _raise)
    elif broken == "tracing":
        monkeypatch.setattr(_step, "_trace", _raise)
    else:
        monkeypatch.setattr(_step, "make_loop", lambda how, *a: _raise() if how == broken else real_make_loop(how, *a))
    run, said = _built_with_warnings("torch", load_spec("conf1"), 12)
    assert run.tier == want and len(said) == 1 and broken in said[0] and f"trying {want!r}" in said[0], said


def test_torch_a_tier_that_disagrees_with_the_book_is_dropped(monkeypatch, tmp_path):
    """A loop that compiles but computes something else (here: no update at all) fails the
    self-check against the book's step and is dropped like one that fails to compile."""
    import torch_impl.fast as fast
    from torch_impl import _step, compiled
    monkeypatch.setattr(fast, "_LOOPS", {})
    real_tiers, real_make_loop = compiled.tiers, _step.make_loop
    monkeypatch.setattr(compiled, "tiers", lambda *a: _from(real_tiers(*a), "step"))
    monkeypatch.setattr(_step, "make_loop", lambda how, *a: (lambda *args: None) if how == "step"
                        else real_make_loop(how, *a))
    run, said = _built_with_warnings("torch", load_spec("conf1"), 12)
    assert run.tier == "eager" and len(said) == 1 and "disagrees with the book's step" in said[0], said


@pytest.mark.parametrize("broken, want", [("xla", "graph"), ("graph", "book")])
def test_tf_a_failing_tier_drops_to_the_next(broken: str, want: str, monkeypatch):
    from tf_impl import compiled
    real_tiers, real_epoch = compiled.tiers, compiled.epoch_function
    monkeypatch.setattr(compiled, "tiers", lambda *a: _from(real_tiers(*a), broken))
    monkeypatch.setattr(compiled, "epoch_function", lambda m, s, n, jit: _raise() if jit == (broken == "xla")
                        else real_epoch(m, s, n, jit))
    run, said = _built_with_warnings("tf", load_spec("conf1"), 12)
    assert run.tier == want and len(said) == 1 and f"tier {broken!r} failed" in said[0], said


def test_torch_tuned_tier_runs_only_where_allow_listed(monkeypatch, tmp_path):
    """Outside the allow-list (another torch release) the tuned tier is passed over with one
    warning a process, and the public tier builds the epoch; with TWINBENCH_TUNED=0 without a word."""
    import torch_impl.fast as fast
    from torch_impl import _tuned
    monkeypatch.setattr(fast, "_LOOPS", {})
    monkeypatch.setattr(_tuned, "_said", set())
    monkeypatch.setattr(_tuned, "TESTED", ("0.0.0",))  # as on a torch release nobody tested it on
    def built(preset: str, n: int) -> tuple[str, list[str]]:
        monkeypatch.setattr(fast, "_LOOPS", {})
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            run = fast.compile_epoch(H.impl("torch").build_model(load_spec(preset), seed=1), load_spec(preset), n)
        return run.tier, [str(w.message) for w in said if "torch_impl." in str(w.message)]
    tier, said = built("conf1", 12)
    assert tier == public_torch_tier() and len(said) == 1 and "allow-list (0.0.0)" in said[0], said
    tier, said = built("conf5", 64)
    assert tier == public_torch_tier() and said == []  # said once already
    assert "not in the tuned tier's allow-list (0.0.0)" in _tuned.unavailable("cpu")
    assert _tuned.unavailable("cuda") == "the tuned tier compiles for the CPU"
    monkeypatch.setattr(_tuned, "TESTED", (__import__("torch").__version__.split("+")[0],))
    monkeypatch.setenv(_tuned.TUNED_ENV, "0")
    assert _tuned.unavailable("cpu") == "TWINBENCH_TUNED=0"
    monkeypatch.setenv(_tuned.TUNED_ENV, "1")
    assert _tuned.unavailable("cpu") is None


def test_torch_cuda_graphs_loop_runs_on_cpu_and_under_no_grad():
    """The CUDA tier's loop (torch_impl._graphs: the compiled step replayed from graphs of many
    steps, the batch index on the device) runs on the CPU with a stand-in for the capture, so
    its indexing, its buffers and the self-check's grad mode are tested without a GPU: built
    inside torch.no_grad() (as a caller may), it trains an epoch with a short last batch like
    the oracle."""
    import torch

    from torch_impl import _step, compiled
    spec = VARIANTS["adam-keras-float32"]
    data = epoch_data(spec, N_TAIL)
    w = H.canonical_weights(spec, 45)
    model = H.impl("torch").build_model(spec, seed=1)
    H.impl("torch").set_weights(model, w)
    with torch.no_grad():
        loop = compiled.checked(model, spec, N_TAIL, _step.make_loop("graphs", spec, _step.trace(model, spec, False),
                                                                      "cpu"))
    epoch = compiled.epoch_function(model, spec, N_TAIL, loop)
    from torch_impl.losses import one_hot
    from torch_impl.training import as_inputs
    from common.epochs import epoch_order
    xs, ts = as_inputs(spec, data[0]), one_hot(spec, data[1])
    loss_sum, correct = epoch(xs, ts, epoch_order(spec, 0, N_TAIL))
    rw, rs, losses, hits = H.ref_epoch(spec, w, data[0], data[1])
    H.assert_close(H.impl("torch").get_weights(model), rw, "float32", "trajectory", "graphs loop vs oracle weights")
    H.assert_close(H.impl("torch").get_optimizer_state(model, spec), rs, "float32", "state", "graphs loop state")
    H.assert_close(loss_sum / N_TAIL, float(np.mean(losses)), "float32", "loss", "graphs loop epoch loss")
    # a second epoch replays the graphs captured for these tensors: its sums start from zero again
    twin = H.impl("torch").build_model(spec, seed=1)
    H.impl("torch").set_weights(twin, w)
    plain = compiled.epoch_function(twin, spec, N_TAIL, _step.make_loop("eager", spec, _step.trace(twin, spec, False),
                                                                         "cpu"))
    plain(xs, ts, epoch_order(spec, 0, N_TAIL))
    got, want = epoch(xs, ts, epoch_order(spec, 1, N_TAIL)), plain(xs, ts, epoch_order(spec, 1, N_TAIL))
    H.assert_close(got[0] / N_TAIL, want[0] / N_TAIL, "float32", "loss", "graphs loop second epoch loss")


def test_torch_small_matmuls_decompose_only_what_they_mean():
    """The traced step's batch-1 decompositions: mm with a size-1 dimension as a broadcast
    product (the same numbers), addmm only with beta = alpha = 1, other shapes left to BLAS."""
    import torch

    from torch_impl import _step
    g = torch.Generator().manual_seed(0)
    a, b, bias = torch.randn(1, 5, generator=g), torch.randn(5, 3, generator=g), torch.randn(3, generator=g)
    torch.testing.assert_close(_step._small_mm(a, b), a @ b)
    torch.testing.assert_close(_step._small_mm(b.T, a.T), b.T @ a.T)
    torch.testing.assert_close(_step._small_addmm(bias, a, b), torch.addmm(bias, a, b))
    assert _step._small_addmm(bias, a, b, beta=2) is NotImplemented
    assert _step._small_addmm(bias, a, b, alpha=0.5) is NotImplemented
    assert _step._small_mm(torch.randn(2, 5, generator=g), b) is NotImplemented


def test_torch_models_of_one_spec_share_the_built_loop(monkeypatch):
    """A second model of the same spec runs the loop the first one built (the loop takes the
    model's tensors as inputs): nothing is built again, the book's steps do not stand in, and
    it trains the second model like the oracle."""
    import torch_impl.fast as fast
    from common.epochs import epoch_order
    from torch_impl import compiled
    from torch_impl.losses import one_hot
    from torch_impl.training import as_inputs
    monkeypatch.setattr(fast, "_LOOPS", {})
    spec = VARIANTS["adam-keras-float32"]
    first = fast.compile_epoch(H.impl("torch").build_model(spec, seed=1), spec, N_TAIL)

    def again(*_):
        raise AssertionError("built again")
    monkeypatch.setattr(compiled, "tiers", again)
    monkeypatch.setattr(compiled, "book_epoch", again)
    model, w = H.impl("torch").build_model(spec, seed=2), H.canonical_weights(spec, 46)
    H.impl("torch").set_weights(model, w)
    second = fast.compile_epoch(model, spec, N_TAIL)
    assert second.tier == first.tier != "book"
    data = epoch_data(spec, N_TAIL)
    second(as_inputs(spec, data[0]), one_hot(spec, data[1]), epoch_order(spec, 0, N_TAIL))
    rw = H.ref_epoch(spec, w, data[0], data[1])[0]
    H.assert_close(H.impl("torch").get_weights(model), rw, "float32", "trajectory", "shared loop vs oracle weights")


def test_torch_fast_on_cuda_replays_cuda_graphs():
    """On a GPU the fast epoch is the compiled step replayed from CUDA graphs (tier 'graphs'),
    and it trains like the oracle."""
    import torch
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible")
    import torch_impl.fast as fast
    spec = VARIANTS["adam-keras-float32"]
    data = epoch_data(spec, N_TAIL)
    w = H.canonical_weights(spec, 46)
    model = H.impl("torch").build_model(spec, seed=1, device="cuda")
    H.impl("torch").set_weights(model, w)
    history = fast.fit(model, spec, data, epochs=1)
    assert history[0]["tier"] == "graphs", history[0]
    rw, _, _, _ = H.ref_epoch(spec, w, data[0], data[1])
    H.assert_close(H.impl("torch").get_weights(model), rw, "float32", "trajectory", "cuda fast vs oracle weights")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fw, tier", [("tf", "graph"), ("torch", "book")])
def test_convnet_fast_epoch_equals_book_and_oracle(fw: str, tier: str, dtype: str):
    """A small convnet with dropout, Adadelta: one fast epoch (with a short last batch) = the book's =
    the oracle's with the shared masks. TF's tier is the graph (XLA is passed over for
    convolutions on a CPU); PyTorch's fast path has no compiled tier for a stack yet (its traced
    step would hold one step's dropout masks): it runs the book's step, and says so."""
    from parity_tests.test_convnets import convnet_spec
    spec = H.replace(convnet_spec("torch-like", dtype), optimizer=D.FORMS["adadelta"])
    impl, data = H.impl(fw), epoch_data(spec, 72)  # 4 batches of 16 and one of 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no tier fails: those that do not apply say so
        mq, mb, hq, hb, w = fast_and_book(fw, spec, data, seed=5)
    assert hq[0]["tier"] == tier, hq[0]
    rw, rs, _, _ = H.ref_epoch(spec, w, data[0], data[1])
    quick, book = impl.get_weights(mq), impl.get_weights(mb)
    H.assert_close(quick, book, dtype, "trajectory", f"{fw} convnet fast vs book weights", scale=H.scale_of(rw))
    H.assert_close(quick, rw, dtype, "trajectory", f"{fw} convnet fast vs oracle weights")
    H.assert_close(impl.get_optimizer_state(mq, spec), rs, dtype, "state", f"{fw} convnet fast vs oracle state")
