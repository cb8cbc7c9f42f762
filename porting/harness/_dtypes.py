"""Dtype promotion for ``check_dtype=False`` (torch's rules) and torch's low-precision rounding."""

from __future__ import annotations

import numpy as np

__all__ = ["promote", "storage_rounder", "compute_dtype"]

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
# torch promotes uint16/32/64 as int64 in assert_close (see TensorLikePair._equalize_attributes).
_WIDE_UNSIGNED = {"uint16", "uint32", "uint64"}


def _category(name: str) -> int:
    return 2 if name == "bfloat16" else 3 if name == "complex32" else _CATEGORY[np.dtype(name).kind]


def promote(a: str, b: str) -> str:
    """Return the dtype two numeric dtypes are compared in, following ``torch.promote_types``.

    A higher category (bool < integer < float < complex) wins outright (``int64`` with ``float16``
    gives ``float16``, unlike numpy's ``float64``); within a category, or float with complex, the
    usual widening applies; ``bfloat16`` with ``float16`` gives ``float32``.

    Args:
        a: dtype name of one side (``"float32"``, ``"bfloat16"``, ...).
        b: dtype name of the other.

    Returns:
        The common dtype name.

    Example:
        >>> promote("int64", "float16"), promote("uint8", "int8"), promote("bfloat16", "float16")
        ('float16', 'int16', 'float32')
    """
    if a == b:  # compared in their own dtype: uint64 values above int64's range are not wrapped
        return a
    a = "int64" if a in _WIDE_UNSIGNED else a
    b = "int64" if b in _WIDE_UNSIGNED else b
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb and not (min(ca, cb) == 2 and max(ca, cb) == 3):
        return a if ca > cb else b  # the higher category keeps its own width
    if {a, b} == {"bfloat16", "float16"}:
        return "float32"
    # bfloat16 / complex32 widen like float16 / complex64 against anything wider.
    na = {"bfloat16": "float16", "complex32": "complex64"}.get(a, a)
    nb = {"bfloat16": "float16", "complex32": "complex64"}.get(b, b)
    return np.promote_types(na, nb).name


def compute_dtype(name: str) -> np.dtype:
    """numpy dtype the values of dtype ``name`` are held and computed in (float32 for 16-bit floats)."""
    return np.dtype({"float16": "float32", "bfloat16": "float32", "complex32": "complex64"}.get(name, name))


def _round_bf16(x: np.ndarray) -> np.ndarray:
    # Round-to-nearest-even float32 -> bfloat16, kept in float32 (what torch's bf16 kernels store).
    x = np.asarray(x, dtype=np.float32)
    bits = x.view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)).view(
        np.float32
    )
    return np.where(np.isnan(x), x, rounded)


def _round_f16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def storage_rounder(name: str):
    """Return the function that rounds a float32 result to dtype ``name``'s precision.

    torch computes float16/bfloat16 element-wise ops in float32 ("opmath", scalars included) and
    rounds each result to the storage dtype; calling this after every op reproduces its bits.
    Other dtypes are computed natively, so the rounder is ``None``.

    Example:
        >>> float(storage_rounder("bfloat16")(np.float32(1.00390625)))
        1.0
    """
    return {"float16": _round_f16, "bfloat16": _round_bf16}.get(name)
