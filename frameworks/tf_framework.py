"""TensorFlow 2 / Keras 3 in the registry."""
from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
from typing import Iterator

import numpy as np

from common.environment import load_triton_first
from common.spec import Spec
from frameworks.base import Framework


# TF: a line of its C++ (absl) logging, or absl's notice that it logs to stderr before it is set up
_NATIVE_LOG = re.compile(r"(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] |"
                         r"WARNING: All log messages before absl::InitializeLog\(\) is called)")


@contextlib.contextmanager
def _native_logs_held_back() -> Iterator[None]:
    """While inside, what is written to file descriptor 2 is held back; then every line but TF's
    own log lines is passed on (Python's warnings too; its errors on a machine with an NVIDIA
    driver). TF: while it loads and probes its devices it logs through absl before its log level
    applies (CUDA drivers looked for and cuInit failing on a CPU machine, the oneDNN notice):
    TF_CPP_MIN_LOG_LEVEL does not reach those lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            gpu_machine = os.path.exists("/dev/nvidiactl")  # there, an error while probing CUDA is real
            kept = [line for line in held.read().decode(errors="replace").splitlines(keepends=True)
                    if not _NATIVE_LOG.match(line) or (gpu_machine and line.startswith("E"))]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


@functools.cache
def _tensorflow():
    """tensorflow, imported and its devices probed (once) with its start-up logging held back, after
    triton's library where triton is installed (common.environment.load_triton_first)."""
    load_triton_first()
    with _native_logs_held_back():
        import tensorflow as tf
        tf.config.list_physical_devices()  # TF: where it looks for CUDA (and logs that it found none)
    return tf


class TensorFlow(Framework):
    name, title, package = "tf", "TensorFlow / Keras 3", "tf_impl"
    requires = ("tensorflow", "keras")

    def book(self):
        _tensorflow()  # first, with its start-up logging held back
        import tf_impl
        return tf_impl

    def fast(self):
        _tensorflow()
        import tf_impl.fast
        return tf_impl.fast

    def gpu_available(self) -> bool:
        tf = _tensorflow()
        return bool(tf.config.list_physical_devices("GPU"))

    def synchronize(self, device: str) -> None:
        if device == "cuda":
            tf = _tensorflow()
            sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
            sync() if sync else None

    def configure(self) -> list[str]:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF: C++ INFO and WARNING lines (read at TF's import)
        # TF: XLA splits a step's larger fused kernels across the intra-op pool; at batch 1 the hand-offs
        # cost more than the work (conf1 about 2x slower on 2 cores). Read when TF's runtime starts.
        # No persistent XLA cache: the epoch compiles in about a second, and TF 2.21 logs an error on
        # every entry it loads (bench/README.md, "Start-up")
        chosen = "TF_NUM_INTRAOP_THREADS" in os.environ
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
        return [] if chosen else self._threads_now()

    def _threads_now(self) -> list[str]:
        """TF: the thread pools are fixed when its runtime starts; if it started before configure,
        ask now and say so when it is too late."""
        if "tensorflow" not in sys.modules:
            return []
        tf = _tensorflow()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
        except RuntimeError:  # TF: the runtime already runs with its own pools
            return ["TensorFlow's runtime started before twinbench configured it: its default intra-op threads "
                    "stay (the fast path's XLA loop about 2x slower at batch 1); set TF_NUM_INTRAOP_THREADS=1"]
        return []

    def versions(self) -> dict:
        tf = _tensorflow()
        import keras
        return {"version": tf.__version__, "keras": keras.__version__,
                "gpus": [g.name for g in tf.config.list_physical_devices("GPU")], **self.threads()}

    def threads(self) -> dict:
        tf = _tensorflow()
        said = {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
        # TF: 0 means "not set through the API": then its environment variable applies, else one thread per
        # core this process may use (TF's MaxParallelism)
        from common.environment import usable_cores
        cores = usable_cores()
        for key, env in (("intra_op_threads", "TF_NUM_INTRAOP_THREADS"), ("inter_op_threads", "TF_NUM_INTEROP_THREADS")):
            if not said[key]:
                chosen = os.environ.get(env, "").strip()
                said[key] = int(chosen) if chosen.isdigit() and int(chosen) > 0 else cores
                said[f"{key}_from"] = f"${env}" if chosen.isdigit() and int(chosen) > 0 else "TF's default (the cores)"
        return said

    def set_threads(self, n: int) -> str | None:
        tf = _tensorflow()
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError as exc:  # TF: thread pools are fixed once the runtime started
            return str(exc).splitlines()[0]
        return None

    def pin_numerics(self) -> list[str]:
        # TF: oneDNN fuses and reorders float ops (results vary with the CPU); read at TF's import
        errors = [] if "tensorflow" not in __import__("sys").modules else \
            ["tensorflow was imported before the numerics were pinned: TF_ENABLE_ONEDNN_OPTS=0 may not apply"]
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
        tf = _tensorflow()
        message = self.set_threads(1)  # a fixed reduction order
        errors += [message] if message else []
        tf.config.experimental.enable_tensor_float_32_execution(False)  # TF: TF32 is on by default on GPUs
        return errors

    def numerics(self) -> dict:
        tf = _tensorflow()
        t = self.threads()
        return {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                "tf intra/inter op threads": (t["intra_op_threads"], t["inter_op_threads"]),
                "tf tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled()}

    GPU_DEFAULTS = {"tf32": True, "deterministic": False}  # TF: TF32 on from Ampere on, unless disabled

    def set_gpu_numerics(self, tf32: bool, deterministic: bool) -> None:
        tf = _tensorflow()
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
        if deterministic:  # TF: once on, op determinism stays on for the process
            tf.config.experimental.enable_op_determinism()

    def logits(self, model, spec: Spec, x: np.ndarray) -> np.ndarray:
        tf = _tensorflow()
        from tf_impl.model import device_name
        from tf_impl.training import as_inputs
        x = as_inputs(spec, x)
        with tf.device(device_name(getattr(model, "device", "cpu"))):
            return np.asarray(model(x, training=False))

    def _layer(self, model, spec: Spec, name: str, u, y):
        tf = _tensorflow()
        from tf_impl.losses import SpecLoss, one_hot
        if name == "loss":
            return SpecLoss(spec)(one_hot(spec, y), u), []
        layer = model.get_layer(name)
        return layer(tf.reshape(u, (u.shape[0], -1)) if name == "hidden" else u, training=True), layer

    def _traced(self, model, spec: Spec, name: str, u: np.ndarray, y: np.ndarray, g=None):
        tf = _tensorflow()
        book = self.book()
        kept = book.get_weights(model)  # TF: a BatchNormalization call in training mode moves its statistics
        with tf.device("/CPU:0"), tf.GradientTape() as tape:
            uu = tf.constant(np.asarray(u, spec.training.dtype))
            tape.watch(uu)
            out, layer = self._layer(model, spec, name, uu, y)
        book.set_weights(model, kept)
        if g is None:
            return out.numpy(), None
        variables = list(layer.trainable_variables) if layer else []
        grads = tape.gradient(out, [uu, *variables], output_gradients=tf.constant(g, out.dtype))
        return grads[0].numpy(), {f"{name}/{v.name}": d.numpy() for v, d in zip(variables, grads[1:])}

    def layer_forward(self, model, spec: Spec, name: str, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._traced(model, spec, name, u, y)[0]

    def layer_vjp(self, model, spec: Spec, name: str, u: np.ndarray, g, y: np.ndarray) -> tuple[np.ndarray, dict]:
        return self._traced(model, spec, name, u, y, g)

    def reported_loss_dtype(self, dtype: str) -> str:
        return "float32"  # TF: Keras's loss tracker (a Mean metric) accumulates in floatx

    def use_optimizer(self, model, spec: Spec, make) -> None:
        from tf_impl.losses import SpecLoss
        from tf_impl.optimizers import make_optimizer
        # TF: the optimizer comes with compile
        model.compile(optimizer=make(model) if make else make_optimizer(spec), loss=SpecLoss(spec))
