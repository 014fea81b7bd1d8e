"""The convnets' layers in float64: each forward pass and its vector-Jacobian product (the local
backward pass: given g = dL/d(output), dL/d(input) and the weights' gradients).

Layouts are Keras's: images (N, height, width, channels), conv kernels (kh, kw, in, out).

  conv2d      a cross-correlation by im2col: every kh x kw window (numpy's
              sliding_window_view), strided, contracted with the kernel by einsum.
              'same' pads with zeros, total = max((out - 1) s + k - n, 0) per axis,
              total // 2 before and the rest after (TF's and PyTorch's placement).
  max_pool2d  the maximum of each window. Its gradient goes to one element per window:
              the first maximum in row-major order within the window (a tie's later
              elements get nothing), summed where windows overlap: where TF's and
              PyTorch's kernels send it (parity_tests/test_layer_ops.py).
  dropout     y = x * mask / (1 - rate) with a given 0/1 mask (inverted dropout).
  log_softmax and nll: log p over the last axis; the batch mean of -log p[label].
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from common.reference.activations import log_softmax, softmax
from common.stack import same_padding


def _pad(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], padding: str) -> tuple[np.ndarray, tuple]:
    if padding == "valid":
        return x, ((0, 0), (0, 0))
    pads = tuple(same_padding(n, k, s) for n, k, s in zip(x.shape[1:3], kernel, strides))
    return np.pad(x, ((0, 0), *pads, (0, 0))), pads


def _windows(x: np.ndarray, window: tuple[int, int], strides: tuple[int, int]) -> np.ndarray:
    """(N, out_h, out_w, C, kh, kw): every window of x, strided."""
    return sliding_window_view(x, window, axis=(1, 2))[:, ::strides[0], ::strides[1]]


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, strides: tuple[int, int] = (1, 1),
                   padding: str = "valid") -> np.ndarray:
    """sum over (i, j, c) of x[n, h s + i, w s + j, c] kernel[i, j, c, f], plus bias[f]."""
    xp, _ = _pad(np.asarray(x, np.float64), kernel.shape[:2], strides, padding)
    return np.einsum("nhwcij,ijcf->nhwf", _windows(xp, kernel.shape[:2], strides), kernel) + bias


def conv2d_vjp(x: np.ndarray, kernel: np.ndarray, g: np.ndarray, strides: tuple[int, int] = (1, 1),
               padding: str = "valid") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dL/dx, dL/dkernel, dL/dbias) given g = dL/d(output)."""
    (kh, kw), (sh, sw) = kernel.shape[:2], strides
    xp, pads = _pad(np.asarray(x, np.float64), (kh, kw), strides, padding)
    dkernel = np.einsum("nhwcij,nhwf->ijcf", _windows(xp, (kh, kw), strides), g)
    dxp = np.zeros_like(xp)
    oh, ow = g.shape[1:3]
    for i in range(kh):  # each kernel tap sends g back to the inputs it read
        for j in range(kw):
            dxp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] += g @ kernel[i, j].T
    (top, _), (left, _) = pads
    return dxp[:, top:top + x.shape[1], left:left + x.shape[2], :], dkernel, g.sum(axis=(0, 1, 2))


def max_pool2d_forward(x: np.ndarray, pool: tuple[int, int] = (2, 2), strides: tuple[int, int] = (2, 2)) -> np.ndarray:
    """The maximum of each pool window (no padding)."""
    return _windows(np.asarray(x, np.float64), pool, strides).max(axis=(-2, -1))


def max_pool2d_vjp(x: np.ndarray, g: np.ndarray, pool: tuple[int, int] = (2, 2),
                   strides: tuple[int, int] = (2, 2)) -> np.ndarray:
    """dL/dx: each window's g to its first maximum in row-major order."""
    (ph, pw), (sh, sw) = pool, strides
    win = _windows(np.asarray(x, np.float64), pool, strides)
    n, oh, ow, c = win.shape[:4]
    first = win.reshape(n, oh, ow, c, ph * pw).argmax(axis=-1)  # argmax: the first of equal maxima
    dx = np.zeros(x.shape)
    nn, hh, ww, cc = np.indices((n, oh, ow, c))
    np.add.at(dx, (nn, hh * sh + first // pw, ww * sw + first % pw, cc), g)
    return dx


def dropout_forward(x: np.ndarray, mask: np.ndarray, rate: float) -> np.ndarray:
    """x * mask / (1 - rate): the kept inputs scaled so the expectation is unchanged."""
    return np.asarray(x, np.float64) * mask / (1.0 - rate)


def dropout_vjp(g: np.ndarray, mask: np.ndarray, rate: float) -> np.ndarray:
    return np.asarray(g, np.float64) * mask / (1.0 - rate)


def log_softmax_vjp(z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """dL/dz of log_softmax(z): g - softmax(z) * sum(g) over the last axis."""
    return g - softmax(z) * np.sum(g, axis=-1, keepdims=True)


def nll_loss(log_p: np.ndarray, labels: np.ndarray) -> float:
    """The batch mean of -log_p[n, labels[n]] (PyTorch's F.nll_loss, reduction 'mean')."""
    labels = np.asarray(labels).reshape(-1)
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


def nll_vjp(log_p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """dL/dlog_p of nll_loss: -1/N at each example's label, 0 elsewhere."""
    labels = np.asarray(labels).reshape(-1)
    out = np.zeros(log_p.shape)
    out[np.arange(len(labels)), labels] = -1.0 / len(labels)
    return out


__all__ = ["conv2d_forward", "conv2d_vjp", "max_pool2d_forward", "max_pool2d_vjp", "dropout_forward",
           "dropout_vjp", "log_softmax", "log_softmax_vjp", "nll_loss", "nll_vjp", "same_padding"]
