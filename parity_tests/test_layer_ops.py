"""The convnets' float64 reference layers (common.reference.convnet) against each framework's own
ops, in float64 on every device present: conv2d (valid and same, strided), max-pool with tied
maxima (where each framework sends the gradient), and log-softmax + NLL. The layouts are mapped
here directly (NHWC/HWIO for TF, NCHW/OIHW for PyTorch); the models' own mapping comes with the
convnet presets."""
from __future__ import annotations

import numpy as np
import pytest

from common.reference import convnet as C
from parity_tests.harness.models import devices, frameworks_on

RNG = np.random.default_rng(5)
TOL = 1e-12  # float64, a few dozen products per output


def upstream(shape) -> np.ndarray:
    """The gradient dL/d(output) each op is pulled back through."""
    return np.random.default_rng(11).normal(size=tuple(shape))


def _tf(fn, *arrays, device):
    import tensorflow as tf
    with tf.device(device.upper() + ":0"):
        xs = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            for x in xs:
                tape.watch(x)
            y = fn(tf, *xs)
            g = tf.constant(upstream(y.shape))
            total = tf.reduce_sum(y * g)
        return y.numpy(), [d.numpy() for d in tape.gradient(total, xs)], g.numpy()


def _torch(fn, *arrays, device):
    import torch
    xs = [torch.tensor(a, device=device, requires_grad=True) for a in arrays]
    y = fn(torch, *xs)
    g = torch.tensor(upstream(y.shape), device=device)
    (y * g).sum().backward()
    return y.detach().cpu().numpy(), [x.grad.cpu().numpy() for x in xs], g.cpu().numpy()


def _run(fw: str, device: str):
    if fw not in frameworks_on(device):
        pytest.skip(f"{fw} is not installed or sees no {device} here")
    return _tf if fw == "tf" else _torch


CASES = [((1, 1), "valid"), ((2, 2), "valid"), ((1, 1), "same")]


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("fw", ["tf", "torch"])
@pytest.mark.parametrize("strides,padding", CASES, ids=[f"{s[0]}x{s[1]}-{p}" for s, p in CASES])
def test_conv2d_matches_the_reference(fw, device, strides, padding):
    x, k, b = RNG.normal(size=(2, 9, 8, 3)), RNG.normal(size=(3, 3, 3, 4)), RNG.normal(size=4)
    if fw == "tf":
        y, (dx, dk, db), g = _run(fw, device)(lambda tf, x, k, b: tf.nn.conv2d(x, k, (1, *strides, 1), padding.upper())
                                              + b, x, k, b, device=device)
    else:  # PT: NCHW images, OIHW kernels; padding='same' only at stride 1
        def conv(torch, x, k, b):
            return torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), b, strides,
                                              padding).permute(0, 2, 3, 1)
        y, (dx, dk, db), g = _run(fw, device)(conv, x, k, b, device=device)
    np.testing.assert_allclose(y, C.conv2d_forward(x, k, b, strides, padding), rtol=0, atol=TOL)
    rdx, rdk, rdb = C.conv2d_vjp(x, k, g, strides, padding)
    for got, want in ((dx, rdx), (dk, rdk), (db, rdb)):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("fw", ["tf", "torch"])
def test_max_pool_ties_go_where_the_reference_sends_them(fw, device):
    """Tied maxima in several windows (two equal values, an all-zero window as after a ReLU):
    each framework's gradient goes to the first maximum in row-major order, as the reference's."""
    x = np.zeros((1, 4, 6, 2))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0
    x[0, 2, 2, 1] = x[0, 3, 3, 1] = x[0, 3, 2, 1] = 1.0
    x[0, :2, 4:, :] = RNG.normal(size=(2, 2, 2))
    if fw == "tf":
        y, (dx,), g = _run(fw, device)(lambda tf, x: tf.nn.max_pool2d(x, 2, 2, "VALID"), x, device=device)
    else:
        y, (dx,), g = _run(fw, device)(lambda torch, x: torch.nn.functional.max_pool2d(
            x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1), x, device=device)
    np.testing.assert_array_equal(y, C.max_pool2d_forward(x))
    np.testing.assert_array_equal(dx, C.max_pool2d_vjp(x, g))


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("fw", ["tf", "torch"])
def test_log_softmax_and_nll_match_the_reference(fw, device):
    z, labels = RNG.normal(size=(6, 10)) * 4, RNG.integers(0, 10, size=6)
    if fw == "tf":
        y, (dz,), g = _run(fw, device)(lambda tf, z: tf.nn.log_softmax(z), z, device=device)
    else:
        y, (dz,), g = _run(fw, device)(lambda torch, z: torch.log_softmax(z, -1), z, device=device)
        import torch
        t = torch.tensor(z, requires_grad=True)
        loss = torch.nn.functional.nll_loss(torch.log_softmax(t, -1), torch.tensor(labels))
        loss.backward()
        assert float(loss.detach()) == pytest.approx(C.nll_loss(C.log_softmax(z), labels), rel=1e-14)
        np.testing.assert_allclose(t.grad.numpy(), C.log_softmax_vjp(z, C.nll_vjp(C.log_softmax(z), labels)),
                                   rtol=0, atol=TOL)
    np.testing.assert_allclose(y, C.log_softmax(z), rtol=0, atol=TOL)
    np.testing.assert_allclose(dz, C.log_softmax_vjp(z, g), rtol=0, atol=TOL)
