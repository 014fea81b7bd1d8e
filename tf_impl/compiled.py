"""Compiled code for tf_impl.fast: XLA's persistent cache for the compiled epoch, and the
threads it runs with. Both are read when TF's runtime starts or XLA first compiles, so
they are set at import."""
from __future__ import annotations

import os

import tensorflow as tf

from common.environment import compile_cache_dir

# TF: XLA's persistent cache lets a new process load a compiled epoch instead of compiling it again
# (read when XLA first compiles, so set before that)
if "persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", ""):
    os.environ["TF_XLA_FLAGS"] = (os.environ.get("TF_XLA_FLAGS", "") + " --tf_xla_persistent_cache_directory="
                                  + str(compile_cache_dir() / "xla")).strip()


def _threads_chosen() -> bool:
    """Whether TF's intra-op threads were set: by the user (TF_NUM_INTRAOP_THREADS or
    tf.config.threading) or by `_one_thread` below; False: TF's default pools."""
    return "TF_NUM_INTRAOP_THREADS" in os.environ or bool(tf.config.threading.get_intra_op_parallelism_threads())


def _one_thread() -> None:
    """One intra-op thread for TF's CPU runtime, as torch_impl.fast's loop uses, unless the
    user chose (TF_NUM_INTRAOP_THREADS or tf.config.threading). XLA splits a step's larger
    fused kernels (the hidden kernel's update) across the intra-op pool; at batch 1 the
    hand-offs cost more than the work (conf1 0.50 -> 0.26 s/epoch on 2 cores; conf5 and
    Keras fit no slower). TF: its pools are fixed when its runtime starts, so this runs at
    import; `compile_epoch` warns when the runtime had started before."""
    if _threads_chosen():
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:  # TF: the runtime already runs with its own pools
        pass


_one_thread()
