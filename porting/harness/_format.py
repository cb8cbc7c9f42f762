"""Failure texts, worded like ``torch.testing.assert_close`` so they read the same in test logs; report tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "format_path",
    "format_location",
    "values_message",
    "scalar_message",
    "attribute_message",
    "keys_message",
    "length_message",
    "text_message",
    "text_array_message",
    "text_table",
]


def format_path(path: tuple) -> str:
    """Render a path of keys/indices as torch does: ``('targets', 3)`` -> ``['targets'][3]``."""
    return "".join(str([item]) for item in path)


def format_location(path: tuple | None, index: tuple[int, ...] | None) -> str:
    """Render a path plus an element index: ``['img'] / [0, 2, 5, 1]`` (empty parts left out).

    Example:
        >>> format_location(("img",), (0, 2))
        "['img'] / [0, 2]"
    """
    parts = [format_path(path)] if path else []
    if index:
        parts.append(str(list(index)))
    return " / ".join(parts)


def _diff_line(kind: str, diff: Any, index: tuple[int, ...] | None, tol: float, equality: bool) -> str:
    if index is None:
        line = f"{kind.title()} difference: {diff}"
    else:
        line = f"Greatest {kind} difference: {diff} at index {index}"
    return line if equality else f"{line} (up to {tol} allowed)"


def values_message(
    *,
    mismatched: int,
    numel: int,
    abs_diff: Any,
    abs_index: tuple[int, ...] | None,
    rel_diff: Any,
    rel_index: tuple[int, ...] | None,
    rtol: float,
    atol: float,
    identifier: str = "Tensor-likes",
) -> str:
    """torch's tensor mismatch text (``make_tensor_mismatch_msg``).

    Example:
        >>> print(values_message(mismatched=1, numel=2, abs_diff=1, abs_index=(0,), rel_diff=0.25,
        ...                      rel_index=(0,), rtol=0.0, atol=0.0))
        Tensor-likes are not equal!
        <BLANKLINE>
        Mismatched elements: 1 / 2 (50.0%)
        Greatest absolute difference: 1 at index (0,)
        Greatest relative difference: 0.25 at index (0,)
    """
    equality = rtol == 0 and atol == 0
    return "\n".join(
        [
            f"{identifier} are not {'equal' if equality else 'close'}!",
            "",
            f"Mismatched elements: {mismatched} / {numel} ({mismatched / numel:.1%})",
            _diff_line("absolute", abs_diff, abs_index, atol, equality),
            _diff_line("relative", rel_diff, rel_index, rtol, equality),
        ]
    )


def scalar_message(actual: Any, expected: Any, *, abs_diff: Any, rel_diff: Any, rtol: float, atol: float) -> str:
    """torch's scalar mismatch text (``make_scalar_mismatch_msg``), used for numbers and 0-d tensors.

    Example:
        >>> print(scalar_message(1.0, 2.0, abs_diff=1.0, rel_diff=0.5, rtol=1.3e-6, atol=1e-5))
        Scalars are not close!
        <BLANKLINE>
        Expected 2.0 but got 1.0.
        Absolute difference: 1.0 (up to 1e-05 allowed)
        Relative difference: 0.5 (up to 1.3e-06 allowed)
    """
    equality = rtol == 0 and atol == 0
    return "\n".join(
        [
            f"Scalars are not {'equal' if equality else 'close'}!",
            "",
            f"Expected {expected} but got {actual}.",
            _diff_line("absolute", abs_diff, None, atol, equality),
            _diff_line("relative", rel_diff, None, rtol, equality),
        ]
    )


def attribute_message(name: str, actual: Any, expected: Any) -> str:
    """``The values for attribute 'shape' do not match: (2, 3) != (3, 2).`` (torch's wording)."""
    return f"The values for attribute '{name}' do not match: {actual} != {expected}."


def _sorted(keys: set) -> list:
    try:
        return sorted(keys)
    except TypeError:  # mixed key types: fall back to a stable textual order
        return sorted(keys, key=repr)


def keys_message(missing: set, extra: set) -> str:
    """torch's mapping-keys text, with the missing and additional keys listed by name."""
    return (
        "The keys of the mappings do not match:\n"
        f"Missing keys in the actual mapping: {_sorted(missing)}\n"
        f"Additional keys in the actual mapping: {_sorted(extra)}"
    )


def length_message(actual: int, expected: int) -> str:
    """``The length of the sequences mismatch: 3 != 4`` (torch's wording)."""
    return f"The length of the sequences mismatch: {actual} != {expected}"


def text_message(actual: str | bytes, expected: str | bytes) -> str:
    """Say where two strings (or two bytes) first differ.

    Example:
        >>> text_message("cat.jpg", "cap.jpg")
        "Strings do not match: 'cat.jpg' != 'cap.jpg' (first difference at position 2)."
    """
    what = "Strings" if isinstance(actual, str) else "Bytes"
    # the common prefix only; when one is a prefix of the other the difference is where the shorter one ends
    pairs = enumerate(zip(actual, expected, strict=False))
    pos = next((i for i, (x, y) in pairs if x != y), min(len(actual), len(expected)))
    return f"{what} do not match: {actual!r} != {expected!r} (first difference at position {pos})."


def text_array_message(mismatched: int, numel: int, index: tuple[int, ...], actual: Any, expected: Any) -> str:
    """Mismatch text for arrays of strings, which have no numeric difference."""
    return "\n".join(
        [
            "String arrays are not equal!",
            "",
            f"Mismatched elements: {mismatched} / {numel} ({mismatched / numel:.1%})",
            f"The first mismatched element is at index {index}: {actual!r} != {expected!r}.",
        ]
    )


def text_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """An aligned plain-text table: the header, a rule of dashes, then one line per row.

    Every column is left-aligned to its widest cell (header included), columns are two spaces apart
    and trailing spaces are stripped from the header and the rows (the rule keeps its full width).

    Args:
        header: the column titles.
        rows: the cells of each row, as strings, as many as ``header`` has.

    Returns:
        The lines joined with ``"\\n"`` (no trailing newline).

    Raises:
        ValueError: a row with more or fewer cells than ``header``, naming the row's index.

    Example:
        >>> print(text_table(["name", "value"], [["lr", "0.1"], ["momentum", ""]]))
        name      value
        --------  -----
        lr        0.1
        momentum
        >>> text_table(["name", "value"], [["lr"]])
        Traceback (most recent call last):
        ...
        ValueError: text_table: row 0 has 1 cells, expected 2 (one per header column)
    """
    header = list(header)
    body = [list(r) for r in rows]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError(f"text_table: row {i} has {len(r)} cells, expected {len(header)} (one per header column)")
    table = [header, *body]
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
