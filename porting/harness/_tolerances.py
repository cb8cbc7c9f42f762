"""Default comparison tolerances per dtype, the same table as ``torch.testing.assert_close``."""

from __future__ import annotations

import math

__all__ = ["DTYPE_PRECISIONS", "default_tolerances", "resolve_tolerances"]

# {dtype name: (rtol, atol)} — copied from torch.testing._comparison._DTYPE_PRECISIONS (torch 2.13);
# tests/porting/test_compare.py checks it against torch's own table. Dtypes not listed (integers,
# bool, strings) compare exactly: (0.0, 0.0).
DTYPE_PRECISIONS: dict[str, tuple[float, float]] = {
    "float16": (0.001, 1e-5),
    "bfloat16": (0.016, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    "complex32": (0.001, 1e-5),
    "complex64": (1.3e-6, 1e-5),
    "complex128": (1e-7, 1e-7),
}


def default_tolerances(*dtypes: str) -> tuple[float, float]:
    """Return the loosest ``(rtol, atol)`` of the given dtype names, as torch does for mixed dtypes.

    Args:
        *dtypes: dtype names such as ``"float32"`` or ``"int64"`` (framework prefix removed).

    Returns:
        ``(rtol, atol)``; ``(0.0, 0.0)`` when every dtype is exact (integers, bool, strings).

    Example:
        >>> default_tolerances("float32", "float16")
        (0.001, 1e-05)
    """
    rtols, atols = zip(*(DTYPE_PRECISIONS.get(d, (0.0, 0.0)) for d in dtypes), strict=True)
    return max(rtols), max(atols)


def resolve_tolerances(rtol: float | None, atol: float | None) -> tuple[float, float] | None:
    """Validate caller-given tolerances: both or neither, each a finite number >= 0.

    Args:
        rtol: relative tolerance or ``None``.
        atol: absolute tolerance or ``None``.

    Returns:
        ``(rtol, atol)`` as floats, or ``None`` when both are omitted (per-dtype defaults apply).

    Raises:
        ValueError: only one of them given (torch's wording), or a negative / non-finite value.

    Example:
        >>> resolve_tolerances(None, None) is None
        True
    """
    if (rtol is None) ^ (atol is None):
        # Same rule and text as torch: atol=0 alone would still pass on rtol's default, a surprise.
        raise ValueError(
            "Both 'rtol' and 'atol' must be either specified or omitted, "
            f"but got no {'rtol' if rtol is None else 'atol'}."
        )
    if rtol is None or atol is None:  # both (one alone was refused above)
        return None
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r} ({type(value).__name__})")
    return float(rtol), float(atol)
