"""TensorFlow 2 / Keras 3 in the registry."""
from __future__ import annotations

import os

import numpy as np

from common.environment import load_triton_first
from common.spec import Spec
from frameworks.base import Framework


def _tensorflow():
    """tensorflow, imported after triton's library where triton is installed (load_triton_first)."""
    load_triton_first()
    import tensorflow
    return tensorflow


class TensorFlow(Framework):
    name, title, package = "tf", "TensorFlow / Keras 3", "tf_impl"
    OWN_DEFAULTS = {  # keras.optimizers / keras.layers defaults (docs/differences.md)
        "optimizer.name=adam": {"optimizer.epsilon": 1e-7, "optimizer.epsilon_convention": "keras"},
        "optimizer.name=rmsprop": {"optimizer.rho": 0.9, "optimizer.epsilon": 1e-7,
                                   "optimizer.epsilon_placement": "inside_sqrt"},
        "optimizer.name=adagrad": {"optimizer.epsilon": 1e-7, "optimizer.epsilon_placement": "inside_sqrt",
                                   "optimizer.initial_accumulator": 0.1},
        "network": {"network.hidden_kernel_init.truncated": True, "network.output_kernel_init.truncated": True,
                    "network.batch_norm.momentum": 0.99, "network.batch_norm.epsilon": 1e-3,
                    "network.batch_norm.running_variance": "biased", "network.leaky_relu_slope": 0.3},
    }

    def book(self):
        import tf_impl
        return tf_impl

    def fast(self):
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

    def versions(self) -> dict:
        tf = _tensorflow()
        import keras
        return {"version": tf.__version__, "keras": keras.__version__,
                "gpus": [g.name for g in tf.config.list_physical_devices("GPU")], **self.threads()}

    def threads(self) -> dict:
        tf = _tensorflow()
        return {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}

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

    def logits(self, model, spec: Spec, x: np.ndarray) -> np.ndarray:
        tf = _tensorflow()
        x = np.asarray(x, dtype=spec.training.dtype).reshape(-1, 28, 28)
        with tf.device("/CPU:0"):
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
