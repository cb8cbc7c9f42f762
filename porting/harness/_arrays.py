"""Value comparison of two same-shape numpy arrays: a cheap equality pass, statistics only when unequal.

Floating-point arrays are first compared as bytes: "bit-identical" is a claim about the bits, and two
arrays can be equal as values yet differ in their bits (``-0.0 == 0.0``; two NaNs with different
payloads under ``equal_nan``). Those elements are counted (:class:`ArrayDiff` ``signed_zeros`` /
``nan_payloads``) so a report can say "equal" without saying "bit-identical".
"""

from __future__ import annotations

import cmath
import ctypes
import ctypes.util
import dataclasses

import numpy as np

from porting.harness._dtypes import storage_rounder

__all__ = ["ArrayDiff", "diff_arrays", "all_equal", "is_worse", "exact_int_abs_diff"]

# Elements per equality chunk: the bool buffer (256 KiB) stays in L2 and no full-size temporary is made.
_CHUNK = 1 << 18
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
# float16: numpy's min/isnan on float16 run at ~0.4 GB/s; the bit test (|bits| > inf's bits) is fast.
_F16_ABS, _F16_INF = np.uint16(0x7FFF), np.uint16(0x7C00)


def _load_memcmp():
    # libc's memcmp compares bytes ~25 % faster than np.equal on uint64 views (measured: 11 vs 8.8 GB/s)
    # and needs no buffer; np.equal on unsigned views is the fallback where no C library is found.
    try:
        name = ctypes.util.find_library("c")
        lib = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        fn = lib.memcmp
    except (OSError, AttributeError, TypeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    return fn


_MEMCMP = _load_memcmp()


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
    signed_zeros: int = 0
    nan_payloads: int = 0
    not_identical_index: tuple[int, ...] | None = None

    @property
    def identical(self) -> bool:
        """Equal in value and in every bit (no element differs in the sign of zero or its NaN payload)."""
        return not self.mismatched and not self.signed_zeros and not self.nan_payloads


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


def _has_nan(x: np.ndarray) -> bool:
    """Whether a float or complex array holds a NaN (one cheap pass; min/max propagate NaN)."""
    if x.dtype.kind == "c":
        return _has_nan(x.real) or _has_nan(x.imag)
    if x.dtype == np.float16:
        return bool((x.view(np.uint16) & _F16_ABS).max(initial=0) > _F16_INF)
    return bool(x.size) and bool(np.isnan(np.min(x)))


def _bits_verdict(a: np.ndarray, e: np.ndarray, equal_nan: bool) -> str:
    """``identical`` (same bytes; no NaN unless ``equal_nan``), ``nan`` (same bytes, NaN, not equal_nan) or ``differ``.

    For same-dtype float/complex arrays. One pass over both arrays in chunks that stay in cache.
    """
    if not (a.flags.c_contiguous and e.flags.c_contiguous):
        if a.dtype.itemsize in _UINT:
            same = bool(np.equal(a.view(_UINT[a.dtype.itemsize]), e.view(_UINT[a.dtype.itemsize])).all())
        else:  # complex128: no 16-byte integer; compare the contiguous copies' bytes
            return _bits_verdict(np.ascontiguousarray(a), np.ascontiguousarray(e), equal_nan)
        if not same:
            return "differ"
        return "identical" if equal_nan or not _has_nan(a) else "nan"
    fa, fe = a.reshape(-1), e.reshape(-1)
    step = _CHUNK if a.itemsize <= 4 else max(1, _CHUNK // 2)
    pa, pe, size = fa.ctypes.data, fe.ctypes.data, a.itemsize
    for start in range(0, fa.size, step):
        stop = min(start + step, fa.size)
        if _MEMCMP is not None:
            if _MEMCMP(pa + start * size, pe + start * size, (stop - start) * size):
                return "differ"
        elif not np.equal(fa[start:stop].view(_UINT.get(size, np.uint64)),
                          fe[start:stop].view(_UINT.get(size, np.uint64))).all():  # fmt: skip
            return "differ"
        if not equal_nan and _has_nan(fa[start:stop]):
            return "nan"
    return "identical"


def _components(x: np.ndarray) -> np.ndarray:
    """A float array's values, or a complex array's (real, imaginary) pairs on a last axis of 2."""
    if x.dtype.kind != "c":
        return x
    return np.stack([x.real, x.imag], axis=-1)


def _not_identical(a: np.ndarray, e: np.ndarray) -> tuple[int, int, tuple[int, ...] | None]:
    """Among elements equal in value (or both NaN): how many differ in the sign of zero, how many in
    their NaN payload, and the index of the first such element. Same-dtype float/complex arrays.

    Contiguous arrays are classified chunk by chunk, and only chunks whose bytes differ are looked at:
    one ``-0.0`` in a large array costs about one byte comparison, not a pass of temporaries.
    """
    if _MEMCMP is None or a.ndim == 0 or not (a.flags.c_contiguous and e.flags.c_contiguous):
        return _not_identical_chunk(a, e)
    fa, fe = a.reshape(-1), e.reshape(-1)
    size, zeros, nans, first = a.itemsize, 0, 0, None
    for start in range(0, fa.size, _CHUNK):
        stop = min(start + _CHUNK, fa.size)
        if not _MEMCMP(fa.ctypes.data + start * size, fe.ctypes.data + start * size, (stop - start) * size):
            continue
        z, n, at = _not_identical_chunk(fa[start:stop], fe[start:stop])
        zeros, nans = zeros + z, nans + n
        if first is None and at is not None:
            first = tuple(int(i) for i in np.unravel_index(start + at[0], a.shape))
    return zeros, nans, first


def _not_identical_chunk(a: np.ndarray, e: np.ndarray) -> tuple[int, int, tuple[int, ...] | None]:
    ca, ce = _components(a), _components(e)
    unsigned = _UINT[ca.dtype.itemsize]
    with np.errstate(all="ignore"):
        differ = ca.view(unsigned) != ce.view(unsigned)
        zeros = differ & (ca == 0) & (ce == 0)
        nans = differ & np.isnan(ca) & np.isnan(ce)
    if a.dtype.kind == "c":  # an element counts once: a NaN payload outranks a signed zero
        nans = nans.any(axis=-1)
        zeros = zeros.any(axis=-1) & ~nans
    either = zeros | nans
    if not either.any():
        return 0, 0, None
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(either)), a.shape))
    return int(np.count_nonzero(zeros)), int(np.count_nonzero(nans)), first


def exact_int_abs_diff(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``|a - e|`` of two same-dtype integer arrays, exact: int64 for narrow dtypes, uint64 for 64-bit ones.

    The difference of two int64 (or uint64) values can need 64 unsigned bits (``int64`` min vs max:
    ``2**64 - 1``); taken in int64 it wraps (to 1 there). Subtracting in uint64 the smaller from the
    larger is exact: the true difference is below ``2**64`` and uint64 arithmetic is modulo ``2**64``.

    Example:
        >>> int(exact_int_abs_diff(np.array([-2**63]), np.array([2**63 - 1]))[0])
        18446744073709551615
    """
    if a.dtype.itemsize < 8:
        return np.abs(a.astype(np.int64) - e.astype(np.int64))
    ua, ue = a.view(np.uint64), e.view(np.uint64)
    with np.errstate(all="ignore"):
        return np.where(a >= e, ua - ue, ue - ua)


def _int_magnitude(e: np.ndarray) -> np.ndarray:
    """``|e|`` of an integer array, exact (``|int64 min|`` is ``2**63``, which int64 cannot hold)."""
    if e.dtype.itemsize < 8 or e.dtype.kind == "u":
        return np.abs(e.astype(np.int64)) if e.dtype.kind != "u" else e
    with np.errstate(all="ignore"):
        return np.where(e < 0, np.uint64(0) - e.view(np.uint64), e.view(np.uint64))


def _isclose(a: np.ndarray, e: np.ndarray, rtol: float, atol: float, equal_nan: bool, rnd) -> np.ndarray:
    # torch.isclose, op for op (aten/src/ATen/native/TensorCompare.cpp), so decisions match bit for bit.
    close = a == e
    if equal_nan and a.dtype.kind in "fc":
        close |= np.isnan(a) & np.isnan(e)
    if rtol == 0 and atol == 0:
        return close
    if a.dtype.kind in "biu":
        # torch: `rtol * int` is float32 (default dtype); we take |a - e| exactly rather than in
        # the input dtype, where torch wraps around (uint8: |3 - 5| would be 254; int64 min vs max: 1).
        err = exact_int_abs_diff(a, e).astype(np.float32)
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
        return exact_int_abs_diff(a, e)  # torch upcasts to int64 (and wraps for 64-bit extremes)
    d = np.abs(a - e)
    return d if rnd is None else rnd(d)


def _rel(abs_diff: np.ndarray, e: np.ndarray, rnd) -> np.ndarray:
    if abs_diff.dtype.kind in "iu":
        # torch: int64 / int64 is true division in the default dtype, float32.
        return abs_diff.astype(np.float32) / _int_magnitude(e).astype(np.float32)
    r = abs_diff / np.abs(e)
    return r if rnd is None else rnd(r)


def diff_arrays(a: np.ndarray, e: np.ndarray, *, rtol: float, atol: float, equal_nan: bool, dtype: str) -> ArrayDiff:
    """Compare same-shape, same-dtype arrays with ``|a - e| <= atol + rtol * |e|`` element-wise.

    Identical float inputs cost one chunked byte comparison and a NaN test, equal integer inputs one
    chunked ``==`` pass; only unequal ones get the full statistics. Float elements equal in value but
    not in bits (``-0.0`` / ``0.0``; NaN payloads under ``equal_nan``) are counted, not mismatched.

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
    floating = a.dtype.kind in "fc" and a.dtype == e.dtype
    if floating:
        bits = _bits_verdict(a, e, equal_nan)
        if bits == "identical":
            return ArrayDiff(numel=int(a.size))
        if bits == "differ" and all_equal(a, e):  # equal values, other bits: signed zeros
            zeros, nans, first = _not_identical(a, e)
            return ArrayDiff(numel=int(a.size), signed_zeros=zeros, nan_payloads=nans, not_identical_index=first)
    elif all_equal(a, e):
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
    zeros = nans = 0
    first = None
    if floating and not mismatched and rtol == 0 and atol == 0:
        # exact, and equal with NaN = NaN: which elements are not identical (a tolerance verdict never says
        # "bit-identical", so within-tolerance passes skip this extra pass)
        zeros, nans, first = _not_identical(a.reshape(shape), e.reshape(shape))
    return ArrayDiff(
        numel=int(a.size),
        mismatched=mismatched,
        signed_zeros=zeros,
        nan_payloads=nans,
        not_identical_index=first,
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
        self.value: float = 0
        self.flat: int | None = None

    def offer(self, chunk: np.ndarray, offset: int) -> None:
        i = int(np.argmax(chunk))  # the first NaN if any
        value = chunk[i].item()
        if self.flat is None or is_worse(value, self.value):
            self.value, self.flat = value, offset + i

    def index(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        return None if self.flat is None else tuple(int(i) for i in np.unravel_index(self.flat, shape))


def is_worse(new: float, old: float) -> bool:
    """Whether difference ``new`` ranks above ``old``; NaN ranks above everything, as in torch.max.

    Example:
        >>> is_worse(float("nan"), 1e9), is_worse(1.0, float("nan")), is_worse(2, 1)
        (True, False, True)
    """
    new_nan = isinstance(new, (float, complex)) and cmath.isnan(new)
    old_nan = isinstance(old, (float, complex)) and cmath.isnan(old)
    return (new_nan and not old_nan) or (not old_nan and not new_nan and new > old)
