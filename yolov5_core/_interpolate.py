"""torch's CPU ``F.interpolate(x, scale_factor=s, mode='bilinear', align_corners=False)`` in numpy, bit for bit.

What ``upsample_bilinear2d`` computes on CPU for float32 (``aten/src/ATen/native/UpSample.h`` and
``cpu/UpSampleKernel.cpp``), per output dimension of input size ``n_in``:

* ``n_out = floor(n_in * s)`` (in double); ``scale = float32(1.0 / s)`` (the factor given, not
  ``n_in / n_out``);
* ``src = max(scale * (d + 0.5) - 0.5, 0)`` for output index ``d``; ``i0 = min(floor(src), n_in - 1)``,
  ``i1 = i0 + (i0 < n_in - 1)``, ``l1 = clamp(src - i0, 0, 1)``, ``l0 = 1 - l1``.

Then one of two kernels, whose float32 rounding differs:

* generic (``upsample_generic_Nd_kernel_impl``): ``out = fma(t0, lh0, t1 * lh1)`` with
  ``t_k = fma(x[h_k, w0], lw0, x[h_k, w1] * lw1)``;
* channels-last (``cpu_upsample_linear_channels_last``), with ``w_ab = lh_a * lw_b``: per pixel, channels
  in whole vectors of 8 get ``fma(x00, w00, fma(x01, w01, fma(x11, w11, x10 * w10)))``, the remaining
  channels ``fma(x11, w11, fma(x10, w10, fma(x00, w00, x01 * w01)))``.

torch runs the channels-last kernel when ``H_out + W_out <= 128``, or torch uses one thread and C == 3
(as in every DataLoader worker), or the input is channels-last with C > 3; else the generic one
(``kernel='auto'`` applies this rule to an NCHW array). The fused multiply-adds are how the AVX2 and
AVX-512 builds of the kernels (torch's choice on any x86-64 CPU since 2013) are compiled; with
``fma=False`` every product is rounded first: torch's ``DEFAULT`` build (``ATEN_CPU_CAPABILITY=default``).
The test suite checks all of these against torch.

Fused multiply-add is emulated exactly: the float32 product is exact in float64, the float64 sum is
rounded to odd (TwoSum error term), and rounding that to float32 is then the correctly rounded fma.
For integer-valued inputs such as uint8 images (YOLOv5's ``collate_fn4``) every intermediate is exact,
so all kernels and both settings agree.
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


_VEC = 8  # floats per vector in the channels-last kernel (what torch's AVX2, AVX-512 and DEFAULT builds use)
_KERNELS = ("auto", "generic", "channels_last")


def _mul_add(a, wa, b, wb, fma: bool) -> np.ndarray:
    """``a * wa + b * wb`` as torch's compiled kernel: ``fma(a, wa, b * wb)``, or plainly."""
    return _fma32(a, wa, b * wb) if fma else a * wa + b * wb


def _generic(x, h, w, fma: bool) -> np.ndarray:
    (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = h, w
    r0, r1 = x[..., h0, :], x[..., h1, :]
    t0 = _mul_add(r0[..., w0], lw0, r0[..., w1], lw1, fma)
    t1 = _mul_add(r1[..., w0], lw0, r1[..., w1], lw1, fma)
    return _mul_add(t0, lh0[:, None], t1, lh1[:, None], fma)


def _channels_last(x, h, w, fma: bool) -> np.ndarray:
    (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = h, w
    w00, w01 = lh0[:, None] * lw0, lh0[:, None] * lw1
    w10, w11 = lh1[:, None] * lw0, lh1[:, None] * lw1
    n_vec = (x.shape[1] // _VEC) * _VEC
    out = np.empty(x.shape[:2] + w00.shape, np.float32)
    # Each channel gets one of the two chains: compute each only where it applies (C == 3: tail only).
    for channels, vector in ((slice(None, n_vec), True), (slice(n_vec, None), False)):
        xc = x[:, channels]
        if xc.shape[1] == 0:
            continue
        x00, x01 = xc[..., h0[:, None], w0], xc[..., h0[:, None], w1]
        x10, x11 = xc[..., h1[:, None], w0], xc[..., h1[:, None], w1]
        if vector and fma:
            out[:, channels] = _fma32(x00, w00, _fma32(x01, w01, _fma32(x11, w11, x10 * w10)))
        elif vector:
            out[:, channels] = x00 * w00 + (x01 * w01 + (x10 * w10 + x11 * w11))
        elif fma:
            out[:, channels] = _fma32(x11, w11, _fma32(x10, w10, _fma32(x00, w00, x01 * w01)))
        else:
            out[:, channels] = ((x00 * w00 + x01 * w01) + x10 * w10) + x11 * w11
    return out


def interpolate_bilinear(
    x: np.ndarray, scale_factor: float = 2.0, *, fma: bool = True, kernel: str = "auto", num_threads: int = 1
) -> np.ndarray:
    """Bilinear resize by ``scale_factor``, ``align_corners=False``: torch CPU's float32 result, bit for bit.

    Args:
        x: float32 array ``(N, C, H, W)`` (NCHW, as ``F.interpolate`` takes it).
        scale_factor: one factor for both spatial dimensions, > 0.
        fma: ``True`` (default): torch's AVX2/AVX-512 kernels (fused multiply-add); ``False``: torch's
            ``DEFAULT`` CPU capability (see the module docstring).
        kernel: ``'auto'`` (torch's choice, see the module docstring), ``'generic'`` or ``'channels_last'``.
        num_threads: torch's ``get_num_threads()`` where the call would run (1 in DataLoader workers);
            read by ``kernel='auto'`` only.

    Returns:
        float32 ``(N, C, floor(H * s), floor(W * s))``, C-contiguous.

    Raises:
        TypeError: ``x`` is not a float32 array.
        ValueError: not 4 dimensions, a non-positive factor, an empty output or an unknown kernel.

    Example:
        >>> interpolate_bilinear(np.array([[[[0., 4.]]]], np.float32)).tolist()
        [[[[0.0, 1.0, 3.0, 4.0], [0.0, 1.0, 3.0, 4.0]]]]
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"interpolate_bilinear: x must be a float32 numpy array, got {got}")
    if x.ndim != 4:
        raise ValueError(f"interpolate_bilinear: x must be 4-D (N, C, H, W), got shape {x.shape}")
    if kernel not in _KERNELS:
        raise ValueError(f"interpolate_bilinear: kernel must be one of {_KERNELS}, got {kernel!r}")
    factor = float(scale_factor)
    if not factor > 0:
        raise ValueError(f"interpolate_bilinear: scale_factor must be > 0, got {scale_factor!r}")
    h = _axis(x.shape[2], factor, fma)
    w = _axis(x.shape[3], factor, fma)
    if kernel == "auto":
        small = len(h[0]) + len(w[0]) <= 128
        kernel = "channels_last" if small or (num_threads == 1 and x.shape[1] == 3) else "generic"
    out = _channels_last(x, h, w, fma) if kernel == "channels_last" else _generic(x, h, w, fma)
    return np.ascontiguousarray(out)
