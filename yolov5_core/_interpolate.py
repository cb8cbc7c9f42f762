"""torch's CPU ``F.interpolate(x, scale_factor=s, mode='bilinear', align_corners=False)`` in numpy, bit for bit.

What ``upsample_bilinear2d`` computes on CPU for float32 (``aten/src/ATen/native/UpSample.h`` and
``cpu/UpSampleKernel.cpp``), per output dimension of input size ``n_in``:

* ``n_out = floor(n_in * s)`` (in double);
* ``scale = float32(1.0 / s)`` (the scale factor given, not ``n_in / n_out``);
* ``src = max(scale * (d + 0.5) - 0.5, 0)`` for output index ``d``; ``i0 = min(floor(src), n_in - 1)``,
  ``i1 = i0 + (i0 < n_in - 1)``, ``l1 = clamp(src - i0, 0, 1)``, ``l0 = 1 - l1``;
* ``out = (x[h0, w0] * lw0 + x[h0, w1] * lw1) * lh0 + (x[h1, w0] * lw0 + x[h1, w1] * lw1) * lh1``, each
  ``a * w + b * w'`` evaluated as ``fma(a, w, b * w')`` — the kernel is compiled per CPU capability, and
  the AVX2 / AVX-512 builds (the ones torch picks on any x86-64 CPU since 2013) contract it into a fused
  multiply-add. With ``fma=False`` each product is rounded first: torch's ``DEFAULT`` capability build
  (``ATEN_CPU_CAPABILITY=default``). The test suite checks both against torch.

Fused multiply-add is emulated exactly: the float32 product is exact in float64, the float64 sum is
rounded to odd (TwoSum error term), and rounding that to float32 is then the correctly rounded fma.
For uint8 images (YOLOv5's ``collate_fn4``) every intermediate is exact, so both variants agree.

Which kernel torch runs: the generic one above, unless ``H_out + W_out <= 128``, or the input is
channels-last with C > 3, or torch runs one thread and C == 3 (as in every DataLoader worker); then
``cpu_upsample_linear_channels_last`` runs, whose float32 rounding order differs (not reproduced here,
see the test). For integer-valued inputs such as uint8 images all of torch's kernels and this port give
the same (exact) values; for arbitrary floats this port is bit-exact with the generic kernel only.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["interpolate_bilinear"]


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Correctly rounded float32 ``a * b + c`` (round-to-odd in float64, then to float32)."""
    p = a.astype(np.float64) * b.astype(np.float64)  # exact: 24 + 24 significant bits
    c = c.astype(np.float64)
    s = p + c
    bv = s - p
    err = (p - (s - bv)) + (c - bv)  # TwoSum: s + err == p + c exactly
    inexact_even = (err != 0) & ((s.view(np.int64) & 1) == 0)
    if inexact_even.any():
        s = np.where(inexact_even, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def _axis(n_in: int, factor: float, fma: bool):
    n_out = int(math.floor(float(n_in) * factor))
    if n_out <= 0:
        raise ValueError(f"interpolate_bilinear: input size {n_in} x scale_factor {factor} gives an empty output")
    scale = np.float32(1.0 / factor)
    d = np.arange(n_out, dtype=np.float32) + np.float32(0.5)
    src = _fma32(np.full_like(d, scale), d, np.full_like(d, -0.5)) if fma else scale * d - np.float32(0.5)
    src = np.where(src < 0, np.float32(0), src).astype(np.float32)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    l1 = np.clip(src - i0.astype(np.float32), np.float32(0), np.float32(1)).astype(np.float32)
    l0 = np.float32(1) - l1
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, l0, l1


def _pair(a, wa, b, wb, fma: bool) -> np.ndarray:
    return _fma32(a, wa, b * wb) if fma else a * wa + b * wb


def interpolate_bilinear(x: np.ndarray, scale_factor: float = 2.0, *, fma: bool = True) -> np.ndarray:
    """Bilinear resize by ``scale_factor``, ``align_corners=False``: torch CPU's float32 result, bit for bit.

    Args:
        x: float32 array ``(..., H, W)`` (e.g. ``(N, C, H, W)`` as ``F.interpolate`` takes).
        scale_factor: one factor for both spatial dimensions, > 0.
        fma: ``True`` (default): torch's AVX2/AVX-512 kernels (fused multiply-add); ``False``: torch's
            ``DEFAULT`` CPU capability (see the module docstring).

    Returns:
        float32 ``(..., floor(H * s), floor(W * s))``.

    Raises:
        TypeError: ``x`` is not a float32 array.
        ValueError: fewer than 2 dimensions, a non-positive factor, or an empty output.

    Example:
        >>> interpolate_bilinear(np.array([[0., 4.]], np.float32)).tolist()
        [[0.0, 1.0, 3.0, 4.0], [0.0, 1.0, 3.0, 4.0]]
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"interpolate_bilinear: x must be a float32 numpy array, got {got}")
    if x.ndim < 2:
        raise ValueError(f"interpolate_bilinear: x must have at least 2 dimensions (..., H, W), got shape {x.shape}")
    factor = float(scale_factor)
    if not factor > 0:
        raise ValueError(f"interpolate_bilinear: scale_factor must be > 0, got {scale_factor!r}")
    h0, h1, lh0, lh1 = _axis(x.shape[-2], factor, fma)
    w0, w1, lw0, lw1 = _axis(x.shape[-1], factor, fma)
    r0, r1 = x[..., h0, :], x[..., h1, :]
    t0 = _pair(r0[..., w0], lw0, r0[..., w1], lw1, fma)
    t1 = _pair(r1[..., w0], lw0, r1[..., w1], lw1, fma)
    return np.ascontiguousarray(_pair(t0, lh0[:, None], t1, lh1[:, None], fma))
