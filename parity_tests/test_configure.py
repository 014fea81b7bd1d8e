"""Settings are applied, not imported: importing the fast paths changes no environment
variable and no framework setting; `frameworks.configure()` sets them (threads, compile
caches, log levels), keeps what the user chose, and says when TF's runtime started first.
Each case runs in a fresh process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_IMPORTS = """
import json, os
import keras, tensorflow as tf, torch  # the frameworks themselves: what they set is theirs
def settings():
    return {"env": dict(os.environ),
            "torch": [torch.get_num_threads(), torch.get_num_interop_threads(), torch.backends.cuda.matmul.allow_tf32,
                      torch.backends.cudnn.allow_tf32, torch.are_deterministic_algorithms_enabled()],
            "tf": [tf.config.threading.get_intra_op_parallelism_threads(),
                   tf.config.threading.get_inter_op_parallelism_threads(),
                   tf.config.experimental.tensor_float_32_execution_enabled(), tf.config.optimizer.get_jit()]}
before = settings()
import frameworks, tf_impl.fast, torch_impl.fast, tf_impl, torch_impl
frameworks.get("tf").fast(), frameworks.get("torch").fast()
after = settings()
changed = sorted(k for k in set(before["env"]) | set(after["env"]) if before["env"].get(k) != after["env"].get(k))
print(json.dumps({"env": changed, "torch": [before["torch"], after["torch"]], "tf": [before["tf"], after["tf"]]}))
"""

_CONFIGURE = """
import json, os, sys
if sys.argv[1] == "started":
    import tensorflow as tf
    tf.constant(1.0)  # TF's runtime starts here, with its default pools
import frameworks
said = frameworks.configure()
keys = ("TF_NUM_INTRAOP_THREADS", "TF_XLA_FLAGS", "TORCHINDUCTOR_CACHE_DIR", "TF_CPP_MIN_LOG_LEVEL")
print(json.dumps({"said": said, **{k: os.environ.get(k) for k in keys}}))
"""


def _run(script: str, *args: str, env: dict | None = None) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("TF_NUM_INTRAOP_THREADS", "TF_XLA_FLAGS",
                                                              "TORCHINDUCTOR_CACHE_DIR", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**base, "PYTHONPATH": str(ROOT), **(env or {})})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_fast_paths_changes_no_setting():
    out = _run(_IMPORTS)
    assert out["env"] == [] and out["torch"][0] == out["torch"][1] and out["tf"][0] == out["tf"][1], out


def test_configure_sets_threads_caches_and_log_level(tmp_path):
    out = _run(_CONFIGURE, "fresh", env={"TWINBENCH_COMPILE_CACHE": str(tmp_path)})
    assert out["said"] == [] and out["TF_NUM_INTRAOP_THREADS"] == "1" and out["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert out["TF_XLA_FLAGS"] is None, out  # no persistent XLA cache (no entry built elsewhere is ever loaded)
    from common.environment import cpu_key
    assert out["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor" / cpu_key()), out  # one folder per CPU


@pytest.mark.parametrize("case, env, want", [
    ("fresh", {"TF_NUM_INTRAOP_THREADS": "2", "TF_CPP_MIN_LOG_LEVEL": "0"}, ("2", "0", [])),  # the user's choice
    # TF's import sets its own log level ("1"), read then: too late for configure's
    ("started", {}, ("1", None, ["TensorFlow's runtime started before twinbench configured it"])),
])
def test_configure_keeps_the_users_choice_and_says_when_too_late(case: str, env: dict, want: tuple):
    out = _run(_CONFIGURE, case, env=env)
    assert out["TF_NUM_INTRAOP_THREADS"] == want[0], out
    assert want[1] is None or out["TF_CPP_MIN_LOG_LEVEL"] == want[1], out
    assert [m[:len(w)] for m, w in zip(out["said"], want[2])] == want[2] and len(out["said"]) == len(want[2]), out


_THREADS = """
import json, frameworks
frameworks.configure()
print(json.dumps(frameworks.get("tf").threads()))
"""


def test_tf_threads_read_back_the_value_that_applies():
    """TF reports 0 for a pool it sized itself: the record says what applies (issue 29: a row said 0
    while one intra-op thread was in force)."""
    out = _run(_THREADS, "fresh")
    assert out["intra_op_threads"] == 1 and out["intra_op_threads_from"] == "$TF_NUM_INTRAOP_THREADS", out
    assert out["inter_op_threads"] >= 1 and out["inter_op_threads_from"] == "TF's default (the cores)", out
