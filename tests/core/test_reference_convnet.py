"""The convnets' float64 layers (common.reference.convnet): each backward pass against central
finite differences of its forward pass, and the forward passes against direct loops."""
from __future__ import annotations

import numpy as np
import pytest

from common.reference import convnet as C

RNG = np.random.default_rng(31)
H = 1e-6  # central differences in float64: error ~ H^2 * f''' + eps / H, about 1e-9 relative here
RTOL = 1e-6


def numeric_vjp(f, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """d(sum(g * f(x)))/dx by central differences, one entry at a time."""
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = H
        out[i] = (np.sum(g * f(x + step)) - np.sum(g * f(x - step))) / (2 * H)
    return out


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.max(np.abs(b)))


def conv_loop(x, k, b, strides, padding):
    """The cross-correlation written out, one output at a time."""
    (kh, kw), (sh, sw) = k.shape[:2], strides
    if padding == "same":
        (t, bo), (le, r) = (C.same_padding(n, kk, s) for n, kk, s in zip(x.shape[1:3], (kh, kw), strides))
        x = np.pad(x, ((0, 0), (t, bo), (le, r), (0, 0)))
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, k.shape[3]))
    for h in range(oh):
        for w in range(ow):
            patch = x[:, h * sh:h * sh + kh, w * sw:w * sw + kw, :]
            out[:, h, w, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2])) + b
    return out


CONVS = [((1, 1), "valid", (6, 7)), ((2, 2), "valid", (7, 6)), ((1, 1), "same", (5, 6)), ((2, 1), "same", (6, 5))]


@pytest.mark.parametrize("strides,padding,hw", CONVS, ids=[f"{s[0]}x{s[1]}-{p}" for s, p, _ in CONVS])
def test_conv2d_forward_and_gradients(strides, padding, hw):
    x, k, b = RNG.normal(size=(2, *hw, 3)), RNG.normal(size=(3, 2, 3, 4)), RNG.normal(size=4)
    y = C.conv2d_forward(x, k, b, strides, padding)
    close(y, conv_loop(x, k, b, strides, padding))
    g = RNG.normal(size=y.shape)
    dx, dk, db = C.conv2d_vjp(x, k, g, strides, padding)
    close(dx, numeric_vjp(lambda v: C.conv2d_forward(v, k, b, strides, padding), x, g))
    close(dk, numeric_vjp(lambda v: C.conv2d_forward(x, v, b, strides, padding), k, g))
    close(db, numeric_vjp(lambda v: C.conv2d_forward(x, k, v, strides, padding), b, g))


def test_same_padding_puts_the_extra_zero_after():
    assert C.same_padding(28, 3, 1) == (1, 1) and C.same_padding(28, 2, 1) == (0, 1)
    assert C.same_padding(7, 3, 2) == (1, 1) and C.same_padding(6, 3, 2) == (0, 1)


@pytest.mark.parametrize("pool,strides", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (2, 1))])
def test_max_pool2d_forward_and_gradient(pool, strides):
    """Continuous inputs (no ties): the gradient is the derivative; overlapping windows add up."""
    x = RNG.normal(size=(2, 7, 6, 3))
    y = C.max_pool2d_forward(x, pool, strides)
    assert y[1, 1, 2, 0] == x[1, strides[0]:strides[0] + pool[0], 2 * strides[1]:2 * strides[1] + pool[1], 0].max()
    g = RNG.normal(size=y.shape)
    close(C.max_pool2d_vjp(x, g, pool, strides), numeric_vjp(lambda v: C.max_pool2d_forward(v, pool, strides), x, g))


def test_max_pool2d_tie_goes_to_the_first_maximum_in_row_major_order():
    x = np.zeros((1, 2, 2, 1))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0  # two equal maxima: (0, 1) comes first
    dx = C.max_pool2d_vjp(x, np.ones((1, 1, 1, 1)))
    assert dx[0, :, :, 0].tolist() == [[0.0, 1.0], [0.0, 0.0]]


def test_dropout_with_a_given_mask():
    x, rate = RNG.normal(size=(4, 5)), 0.25
    mask = (RNG.random((4, 5)) >= rate).astype(np.float64)
    y = C.dropout_forward(x, mask, rate)
    assert np.all(y[mask == 0] == 0) and np.allclose(y[mask == 1], x[mask == 1] / 0.75)
    g = RNG.normal(size=y.shape)
    close(C.dropout_vjp(g, mask, rate), numeric_vjp(lambda v: C.dropout_forward(v, mask, rate), x, g))


def test_log_softmax_and_nll():
    z, labels = RNG.normal(size=(5, 10)) * 3, RNG.integers(0, 10, size=5)
    log_p = C.log_softmax(z)
    close(np.exp(log_p).sum(axis=-1), np.ones(5))
    g = RNG.normal(size=z.shape)
    close(C.log_softmax_vjp(z, g), numeric_vjp(C.log_softmax, z, g))
    assert C.nll_loss(log_p, labels) == pytest.approx(-np.mean([log_p[i, t] for i, t in enumerate(labels)]), rel=1e-15)
    close(C.nll_vjp(log_p, labels), numeric_vjp(lambda v: np.asarray(C.nll_loss(v, labels)), log_p, np.ones(())))
    # the pair is cross-entropy on logits: d/dz = (softmax(z) - onehot) / N
    close(C.log_softmax_vjp(z, C.nll_vjp(log_p, labels)), (np.exp(log_p) - np.eye(10)[labels]) / 5)
