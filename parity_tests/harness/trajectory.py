"""Training trajectories: K train_step calls in both frameworks and the oracle, compared
after every step; and runs with a framework's own optimizer (the defaults catalogue)."""
from __future__ import annotations

import numpy as np

import frameworks
from common import reference as ref
from common.canonical import is_moving
from common.config import replace
from common.data import epoch_permutation
from common.masks import step_masks
from common.spec import Spec
from common.tolerances import trajectory_quantities
from parity_tests.harness.checks import check_reported_losses, three_way
from parity_tests.harness.data import batches
from parity_tests.harness.models import BUILD_SEED, build_pair, impl


def split(weights: dict) -> tuple[dict, dict]:
    """(trainable weights, batch-norm moving statistics)."""
    return ({k: v for k, v in weights.items() if not is_moving(k)},
            {k: v for k, v in weights.items() if is_moving(k)})


GAUGE = "hidden/bias"  # under batch norm before the activation: no effect on the loss


def run_trajectory(spec: Spec, seed: int, steps: int, what: str, data_seed: int = 0, device: str = "cpu") -> None:
    """`steps` train_step calls on the same batches in tf, torch and the oracle;
    after every step compares weights, optimizer state and moving statistics.

    Batch norm before the activation makes the hidden bias a gauge direction:
    its gradient is exactly 0 in exact arithmetic, so each implementation's
    value is its own rounding noise, which Adagrad/RMSprop/Adam (outside-sqrt
    epsilon) amplify to steps of up to lr. That bias, its optimizer slots and
    the part of the moving mean it feeds are therefore not compared; the moving
    mean is compared without it: mm - B, B = m B + (1 - m) b, each from its own
    bias history (mm = m mm + (1 - m) mean(x W + b) is linear in b). The same
    holds for the kernel row of any pixel that is constant within a batch (the
    MNIST border), and later batches turn that noise into real divergence, so
    these runs use Gaussian pixels (gaussian_pool); test_trajectories shows the
    effect on MNIST."""
    dtype, mlp = spec.training.dtype, spec.network.chapter_mlp
    bn = mlp.batch_norm if mlp else None
    gauge = bn is not None and bn.mode == "before_activation"
    w = ref.start_weights(spec, seed)
    models = build_pair(spec, w, device)
    rw, rs = {k: v.astype(np.float64) for k, v in w.items()}, ref.init_state(spec, w)
    qw, qs, ql = trajectory_quantities(spec)
    prev = {fw: w for fw in (*models, "ref")}
    bias_part = {fw: np.zeros(mlp.hidden_units if mlp else 0) for fw in prev}
    for k, (x, y) in enumerate(batches(spec.training.batch_size, steps, data_seed, gaussian=gauge)):
        x = x.astype(dtype)
        losses = {fw: impl(fw).train_step(models[fw], spec, x, y) for fw in models}
        losses["ref"], rw, rs = ref.train_step(spec, rw, rs, x, y, step_masks(spec, BUILD_SEED, k, len(x)))
        at = f"{what} step {k + 1}"
        check_reported_losses(losses, dtype, f"{at} train_step loss", ql)
        ws = {**{fw: impl(fw).get_weights(models[fw]) for fw in models}, "ref": rw}
        parts = {fw: split(v) for fw, v in ws.items()}
        if gauge:
            for fw in ws:
                bias_part[fw] = bn.momentum * bias_part[fw] + (1 - bn.momentum) * prev[fw][GAUGE].astype(np.float64)
                parts[fw][1]["bn/moving_mean"] = parts[fw][1]["bn/moving_mean"] - bias_part[fw]
                del parts[fw][0][GAUGE]
        prev = ws
        three_way({fw: p[0] for fw, p in parts.items()}, dtype, qw, f"{at} weights")
        if parts["ref"][1]:
            three_way({fw: p[1] for fw, p in parts.items()}, dtype, qw, f"{at} BN moving statistics")
        if rs:
            st = {**{fw: impl(fw).get_optimizer_state(models[fw], spec) for fw in models}, "ref": rs}
            if gauge:
                st = {fw: {n: v for n, v in s.items() if not n.endswith("/" + GAUGE)} for fw, s in st.items()}
            three_way(st, dtype, qs, f"{at} optimizer state")


def ref_run(spec: Spec, w: dict, data: list, lr: list[float] | None = None) -> dict:
    """The oracle's weights after train_step over `data` (lr: per-step learning
    rate for SGD, Keras's velocity form)."""
    rw, rs = {k: np.asarray(v, np.float64) for k, v in w.items()}, ref.init_state(spec, w)
    for k, (x, y) in enumerate(data):
        s = spec if lr is None else replace(spec, **{"optimizer.learning_rate": lr[k]})
        _, rw, rs = ref.train_step(s, rw, rs, x, y)
    return rw


def ref_epoch(spec: Spec, w: dict, x: np.ndarray, y: np.ndarray,
              epoch: int = 0) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """The oracle's (weights, optimizer state, per-example losses, per-example hits) after one
    epoch over x in the shared order (epoch_permutation(seed, epoch), batches of batch_size,
    the last one short); a hit: the prediction made before its batch's update was right."""
    n, bs = len(x), spec.training.batch_size
    order = epoch_permutation(spec.training.seed, epoch, n) if spec.training.shuffle else np.arange(n)
    rw, rs = {k: np.asarray(v, np.float64) for k, v in w.items()}, ref.init_state(spec, w)
    losses, hits = [], []
    for k, i in enumerate(range(0, n, bs)):
        rows = order[i:i + bs]
        masks = step_masks(spec, BUILD_SEED, k, len(rows))  # the optimizer's k-th step from fresh state
        hits += list(ref.forward(rw, spec, x[rows], training=True, masks=masks)["p"].argmax(-1) == y[rows])
        loss, rw, rs = ref.train_step(spec, rw, rs, x[rows], y[rows], masks, epoch=epoch)
        losses += [loss] * len(rows)
    return rw, rs, np.array(losses), np.array(hits)


def framework_run(fw: str, spec: Spec, w: dict, data: list, optimizer=None, edit=None) -> dict:
    """Weights after train_step over `data` in one framework, built from the spec and
    then, optionally, edited (edit(model)) and/or given another optimizer,
    optimizer(model) -> the framework's optimizer (frameworks' use_optimizer)."""
    model = impl(fw).build_model(spec, seed=1)
    impl(fw).set_weights(model, w)
    if edit is not None:
        edit(model)
    if optimizer is not None or edit is not None:  # (an edited layer may hold fresh parameters)
        frameworks.get(fw).use_optimizer(model, spec, optimizer)
    for x, y in data:
        impl(fw).train_step(model, spec, x, y)
    return impl(fw).get_weights(model)
