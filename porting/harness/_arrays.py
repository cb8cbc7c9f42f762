"""Value comparison of two same-shape numpy arrays: a cheap equality pass, statistics only when unequal."""

from __future__ import annotations

import cmath
import dataclasses

import numpy as np

from porting.harness._dtypes import storage_rounder

__all__ = ["ArrayDiff", "diff_arrays", "all_equal", "is_worse"]

# Elements per equality chunk: the bool buffer (256 KiB) stays in L2 and no full-size temporary is made.
_CHUNK = 1 << 18


@dataclasses.dataclass(frozen=True, slots=True)
class ArrayDiff:
    """How two arrays differ.

    ``abs_*``/``rel_*`` follow ``torch.testing.assert_close``: maxima over the *mismatched* elements
    only. ``worst_*`` are maxima over *all* elements (what a within-tolerance pass deviated by).
    Indices are tuples (``()`` for 0-d); all figures are ``None`` where they do not apply.
    """

    numel: int
    mismatched: int = 0
    abs_diff: float | int | None = None
    abs_index: tuple[int, ...] | None = None
    rel_diff: float | None = None
    rel_index: tuple[int, ...] | None = None
    worst_abs: float | int = 0
    worst_abs_index: tuple[int, ...] | None = None
    worst_rel: float = 0.0
    worst_rel_index: tuple[int, ...] | None = None


def all_equal(a: np.ndarray, e: np.ndarray) -> bool:
    """``(a == e).all()`` without a full-size temporary when both are contiguous (NaN is never equal).

    Example:
        >>> all_equal(np.zeros(3), np.zeros(3)), all_equal(np.array([np.nan]), np.array([np.nan]))
        (True, False)
    """
    if a.size <= _CHUNK or not (a.flags.c_contiguous and e.flags.c_contiguous):
        return bool(np.equal(a, e).all())
    fa, fe = a.reshape(-1), e.reshape(-1)  # views: both are contiguous
    if a.dtype == e.dtype and a.dtype.kind in "biu" and a.nbytes % 8 == 0:
        # For integers equality is bit equality: compare 8 bytes per element (uint8 images: 8x fewer).
        fa, fe = fa.view(np.uint64), fe.view(np.uint64)
    buf = np.empty(_CHUNK, dtype=bool)
    for start in range(0, fa.size, _CHUNK):
        stop = min(start + _CHUNK, fa.size)
        out = buf[: stop - start]
        np.equal(fa[start:stop], fe[start:stop], out=out)
        if not out.all():
            return False
    return True


def _isclose(a: np.ndarray, e: np.ndarray, rtol: float, atol: float, equal_nan: bool, rnd) -> np.ndarray:
    # torch.isclose, op for op (aten/src/ATen/native/TensorCompare.cpp), so decisions match bit for bit.
    close = a == e
    if equal_nan and a.dtype.kind in "fc":
        close |= np.isnan(a) & np.isnan(e)
    if rtol == 0 and atol == 0:
        return close
    if a.dtype.kind in "biu":
        # torch: `rtol * int` is float32 (default dtype); we take |a - e| in int64 rather than in
        # the input dtype, where torch wraps around (uint8: |3 - 5| would be 254).
        err = np.abs(a.astype(np.int64) - e.astype(np.int64)).astype(np.float32)
        allowed = np.float32(atol) + np.abs(np.float32(rtol) * e.astype(np.float32))
    elif rnd is not None:  # float16/bfloat16 held in float32: round after every op, as torch does
        # Measured on torch 2.13 CPU: `rtol * t` keeps rtol in float32, `atol + t` first rounds atol to t's dtype.
        allowed = rnd(rnd(np.float32(atol)) + np.abs(rnd(np.float32(rtol) * e)))
        err = rnd(np.abs(a - e))
    else:
        allowed = atol + np.abs(rtol * e)
        err = np.abs(a - e)
    close |= np.isfinite(err) & (err <= allowed)
    return close


def _abs_diff(a: np.ndarray, e: np.ndarray, rnd) -> np.ndarray:
    if a.dtype.kind in "biu":
        return np.abs(a.astype(np.int64) - e.astype(np.int64))  # torch upcasts to int64 too
    d = np.abs(a - e)
    return d if rnd is None else rnd(d)


def _rel(abs_diff: np.ndarray, e: np.ndarray, rnd) -> np.ndarray:
    if abs_diff.dtype.kind == "i":
        # torch: int64 / int64 is true division in the default dtype, float32.
        return abs_diff.astype(np.float32) / np.abs(e.astype(np.int64)).astype(np.float32)
    r = abs_diff / np.abs(e)
    return r if rnd is None else rnd(r)


def diff_arrays(a: np.ndarray, e: np.ndarray, *, rtol: float, atol: float, equal_nan: bool, dtype: str) -> ArrayDiff:
    """Compare same-shape, same-dtype arrays with ``|a - e| <= atol + rtol * |e|`` element-wise.

    Equal inputs cost one chunked ``==`` pass; only unequal ones get the full statistics.

    Args:
        a: actual values.
        e: expected values (same shape and numpy dtype as ``a``).
        rtol: relative tolerance.
        atol: absolute tolerance.
        equal_nan: whether NaN matches NaN.
        dtype: the logical dtype name (``"bfloat16"`` arrays are held in float32 and rounded like torch).

    Returns:
        An :class:`ArrayDiff`; ``mismatched == 0`` means close.

    Example:
        >>> diff_arrays(np.array([1.0, 2.0]), np.array([1.0, 2.5]), rtol=0, atol=0, equal_nan=False,
        ...             dtype="float64").abs_index
        (1,)
    """
    if all_equal(a, e):
        return ArrayDiff(numel=int(a.size))
    rnd = storage_rounder(dtype)
    shape = a.shape
    a, e = a.reshape(-1), e.reshape(-1)  # 1-d keeps ufunc results arrays even for 0-d inputs
    mismatched = 0
    worst_abs, worst_rel, mm_abs, mm_rel = _Max(), _Max(), _Max(), _Max()
    # Chunks keep every temporary in cache: several times faster than whole-array passes.
    with np.errstate(all="ignore"):
        for start in range(0, a.size, _CHUNK):
            x, y = a[start : start + _CHUNK], e[start : start + _CHUNK]
            if rnd is not None:  # float16 is computed in float32 and rounded back, like torch's kernels
                x, y = x.astype(np.float32, copy=False), y.astype(np.float32, copy=False)
            close = _isclose(x, y, rtol, atol, equal_nan, rnd)
            abs_all = _abs_diff(x, y, rnd)
            if equal_nan and x.dtype.kind in "fc":
                abs_all[np.isnan(x) & np.isnan(y)] = 0
            rel_all = _rel(abs_all, y, rnd)
            rel_all[abs_all == 0] = 0  # 0 / 0 where equal
            worst_abs.offer(abs_all, start)
            worst_rel.offer(rel_all, start)
            bad = int(close.size - np.count_nonzero(close))
            if bad:
                mismatched += bad
                # torch.testing's statistics: matched elements are zeroed before the max.
                abs_all[close] = 0
                rel_all[close] = 0
                mm_abs.offer(abs_all, start)
                mm_rel.offer(rel_all, start)
    return ArrayDiff(
        numel=int(a.size),
        mismatched=mismatched,
        abs_diff=mm_abs.value if mismatched else None,
        abs_index=mm_abs.index(shape),
        rel_diff=mm_rel.value if mismatched else None,
        rel_index=mm_rel.index(shape),
        worst_abs=worst_abs.value,
        worst_abs_index=worst_abs.index(shape),
        worst_rel=worst_rel.value,
        worst_rel_index=worst_rel.index(shape),
    )


class _Max:
    """Running maximum over chunks and its flat position; NaN wins, the earliest wins ties (torch.max)."""

    __slots__ = ("value", "flat")

    def __init__(self) -> None:
        self.value: object = 0
        self.flat: int | None = None

    def offer(self, chunk: np.ndarray, offset: int) -> None:
        i = int(np.argmax(chunk))  # the first NaN if any
        value = chunk[i].item()
        if self.flat is None or is_worse(value, self.value):
            self.value, self.flat = value, offset + i

    def index(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        return None if self.flat is None else tuple(int(i) for i in np.unravel_index(self.flat, shape))


def is_worse(new: object, old: object) -> bool:
    """Whether difference ``new`` ranks above ``old``; NaN ranks above everything, as in torch.max.

    Example:
        >>> is_worse(float("nan"), 1e9), is_worse(1.0, float("nan")), is_worse(2, 1)
        (True, False, True)
    """
    new_nan = isinstance(new, (float, complex)) and cmath.isnan(new)
    old_nan = isinstance(old, (float, complex)) and cmath.isnan(old)
    return (new_nan and not old_nan) or (not old_nan and not new_nan and new > old)
