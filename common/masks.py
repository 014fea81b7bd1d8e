"""Dropout masks shared by both frameworks: each training step's mask of each dropout layer is
a function of (seed, step, layer), so a TF run and a PyTorch run drop the same inputs. The step
counts the run's optimizer steps from 0 (epoch e's batch b is step e * batches_per_epoch + b),
which each framework's optimizer counts already; layer is the layer's index in the stack.

The mask is counter-based, so that each framework can compute it where its tensors live, with
integer operations only (no generator state to carry):

  key  = mix(seed, step, layer)                            32 bits: h = fmix32(h * 0x9E3779B1 + part + 1)
  h[i] = fmix32((i * 0x9E3779B1 + key) mod 2^32)           i: the element's flat index in (N, ...)
  keep[i] = (h[i] >> 8) >= threshold(rate),  threshold = floor(rate * 2^24)

fmix32 is MurmurHash3's finalizer. P(keep) = 1 - threshold / 2^24, rate to within 2^-24.
"""
from __future__ import annotations

import numpy as np

from common.spec import Spec
from common.stack import walk

M32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B1


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer on uint64 arrays holding 32-bit values."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & M32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


def step_key(seed: int, step: int, layer: int) -> int:
    """The 32-bit key of one layer's mask at one optimizer step (from 0)."""
    h = np.uint64(0)
    for part in (seed, step, layer):
        h = fmix32(np.uint64((int(h) * GOLDEN + (int(part) & M32) + 1) & M32))
    return int(h)


def threshold(rate: float) -> int:
    """Hash values (24 bits) below this are dropped."""
    return int(np.floor(rate * 2.0 ** 24))


def keep_mask(key: int, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """The 0/1 mask (float64) of a tensor of `shape` (batch axis included) for `key`."""
    i = np.arange(int(np.prod(shape)), dtype=np.uint64)
    h = fmix32((i * GOLDEN + key) & M32)
    return ((h >> 8) >= threshold(rate)).astype(np.float64).reshape(shape)


def step_masks(spec: Spec, seed: int, step: int, n: int) -> dict[str, np.ndarray]:
    """Every dropout layer's mask at one step, for a batch of n: layer name -> (n, *its input shape),
    in the canonical (NHWC) layout."""
    return {w.name: keep_mask(step_key(seed, step, w.index), (n, *w.input_shape), w.layer.rate)
            for w in walk(spec.network) if w.layer.type == "dropout"}
